//! Focus events for a program that enabled them (`?1004`): the session's terminal has focus
//! while any writer's terminal has it (a writer that attaches has it: the user just typed the
//! attach there), and the program hears each change once, as `CSI I` or `CSI O`, only from real
//! clients (never from `send`, never from a read-only viewer), and a focus-out when the last
//! writer leaves.

use super::Session;
use crate::log;
use crate::server::commands::ClientId;

impl Session {
    /// A client's terminal reported a focus change.
    pub(super) fn on_focus(&mut self, client: ClientId, focused: bool) {
        if self.clients.set_focus(client, focused) {
            self.set_focus(self.clients.any_focused());
        }
    }

    /// A client left (detached, or its connection ended).
    pub(super) fn client_left(&mut self, client: ClientId) {
        if let Some((writer, focused)) = self.clients.remove(client) {
            self.after_leaving(writer, focused);
        }
    }

    /// Ends one client's attachment: it is told it was detached.
    pub(super) fn client_detached(&mut self, client: ClientId) {
        if let Some((writer, focused)) = self.clients.detach(client) {
            self.after_leaving(writer, focused);
        }
    }

    fn after_leaving(&mut self, writer: bool, focused: bool) {
        if writer && self.clients.writers() == 0 {
            // Nobody can be looking any more, whatever the terminals last said.
            self.set_focus(false);
        } else if focused {
            self.set_focus(self.clients.any_focused());
        }
    }

    pub(super) fn set_focus(&mut self, focused: bool) {
        if self.clients.focus == Some(focused) {
            return;
        }
        self.clients.focus = Some(focused);
        if !self.model.focus_reporting() || !self.child_running {
            return;
        }
        let report: &[u8] = if focused { b"\x1b[I" } else { b"\x1b[O" };
        if !self.input.push_typed(report) {
            log::warn(&format!(
                "session {}: program is not reading its input; dropped a focus report",
                self.name
            ));
        }
    }
}
