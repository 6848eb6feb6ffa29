//! The clients attached to one session: who they are, their output queues, and fanning output
//! out to them without ever waiting for one.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::server::commands::{ClientId, ClientLink};
use crate::server::outbox::{Control, Outbox};

struct Client {
    outbox: Arc<Outbox>,
    read_only: bool,
    size: (u16, u16),
    /// What the client's terminal said about itself.
    profile: Option<crate::term::Profile>,
    /// Its terminal said it has focus (and has not said otherwise since).
    focused: bool,
    /// When it attached or last typed, as a count of such events: the latest writer owns the
    /// clipboard.
    active_at: u64,
    /// Its terminal resized: it gets the screen drawn afresh.
    redraw: bool,
}

#[derive(Default)]
pub struct Clients {
    attached: HashMap<ClientId, Client>,
    next_id: ClientId,
    /// Attaches and typing so far, to order clients by their last activity.
    activity: u64,
    /// Whether the session's terminal has focus, as far as the clients said (`None` before
    /// any did): a program that enables focus events hears only changes of it.
    pub focus: Option<bool>,
}

impl Clients {
    /// Attaches a client whose first output is `screen`.
    pub fn add(
        &mut self,
        read_only: bool,
        size: (u16, u16),
        screen: Bytes,
        profile: Option<crate::term::Profile>,
    ) -> ClientLink {
        self.next_id += 1;
        self.activity += 1;
        let id = self.next_id;
        let outbox = Arc::new(Outbox::default());
        outbox.push_fresh(screen);
        self.attached.insert(
            id,
            Client {
                outbox: outbox.clone(),
                read_only,
                size,
                profile,
                // Someone just ran `linger attach` in that terminal: it has focus until it
                // says otherwise.
                focused: !read_only,
                active_at: self.activity,
                redraw: false,
            },
        );
        ClientLink { outbox, id }
    }

    /// Forgets a client; returns `(writer, focused)` for one that was attached.
    pub fn remove(&mut self, id: ClientId) -> Option<(bool, bool)> {
        self.attached
            .remove(&id)
            .map(|c| (!c.read_only, c.focused && !c.read_only))
    }

    /// Like [`Clients::remove`], and tells the client it was detached.
    pub fn detach(&mut self, id: ClientId) -> Option<(bool, bool)> {
        let client = self.attached.remove(&id)?;
        client.outbox.end(Control::Detached);
        Some((!client.read_only, client.focused && !client.read_only))
    }

    /// Attached clients that may type.
    pub fn writers(&self) -> usize {
        self.attached.values().filter(|c| !c.read_only).count()
    }

    /// A writer typed: it becomes the one the clipboard goes to.
    pub fn touch(&mut self, id: ClientId) {
        if let Some(c) = self.attached.get_mut(&id) {
            self.activity += 1;
            c.active_at = self.activity;
        }
    }

    /// The writer that typed last, or attached last if none typed since.
    pub fn latest_writer(&self) -> Option<ClientId> {
        self.attached
            .iter()
            .filter(|(_, c)| !c.read_only)
            .max_by_key(|(_, c)| c.active_at)
            .map(|(id, _)| *id)
    }

    /// Records a writer's focus; false for viewers and strangers (their focus is not the
    /// program's business).
    pub fn set_focus(&mut self, id: ClientId, focused: bool) -> bool {
        match self.attached.get_mut(&id) {
            Some(c) if !c.read_only => {
                c.focused = focused;
                true
            }
            _ => false,
        }
    }

    /// Whether any writer's terminal has focus.
    pub fn any_focused(&self) -> bool {
        self.attached.values().any(|c| c.focused && !c.read_only)
    }

    pub fn len(&self) -> usize {
        self.attached.len()
    }

    /// The size of a client that may type and resize; `None` for viewers and strangers.
    pub fn writer_size(&self, id: ClientId) -> Option<(u16, u16)> {
        self.attached
            .get(&id)
            .filter(|c| !c.read_only)
            .map(|c| c.size)
    }

    /// A writer's terminal profile, if it sent one.
    pub fn profile(&self, id: ClientId) -> Option<&crate::term::Profile> {
        self.attached
            .get(&id)
            .filter(|c| !c.read_only)
            .and_then(|c| c.profile.as_ref())
    }

    /// Records a writer's terminal profile; false for viewers and strangers.
    pub fn set_profile(&mut self, id: ClientId, profile: crate::term::Profile) -> bool {
        match self.attached.get_mut(&id) {
            Some(c) if !c.read_only => {
                c.profile = Some(profile);
                true
            }
            _ => false,
        }
    }

    /// Records a writer's new size; false for viewers and strangers.
    pub fn set_size(&mut self, id: ClientId, size: (u16, u16)) -> bool {
        match self.attached.get_mut(&id) {
            Some(c) if !c.read_only => {
                c.size = size;
                true
            }
            _ => false,
        }
    }

    /// Queues output for every client; a client past its bound drops its backlog. With
    /// `clipboard` (the same output with its OSC 52 writes kept), the latest writer gets that
    /// instead: a copy goes to the user at the keyboard, never to a viewer.
    pub fn forward(&self, data: &Bytes, clipboard: Option<&Bytes>) {
        let owner = clipboard.and(self.latest_writer());
        for (id, client) in &self.attached {
            let out = match clipboard {
                Some(clip) if owner == Some(*id) => clip,
                _ => data,
            };
            if !out.is_empty() {
                client.outbox.push_output(out);
            }
        }
    }

    /// The most output any client has queued, not yet written to its socket.
    pub fn most_queued(&self) -> usize {
        self.attached
            .values()
            .map(|client| client.outbox.queued())
            .max()
            .unwrap_or(0)
    }

    /// Marks a client to get the screen drawn afresh at its next [`Clients::resync`].
    pub fn request_redraw(&mut self, id: ClientId) {
        if let Some(c) = self.attached.get_mut(&id) {
            c.redraw = true;
        }
    }

    /// A lagging client caught up, or one asked for a redraw: give it the screen as it is now.
    pub fn resync(&mut self, id: ClientId, screen: impl FnOnce() -> Bytes) {
        let Some(c) = self.attached.get_mut(&id) else {
            return;
        };
        let redraw = std::mem::take(&mut c.redraw);
        if c.outbox.is_lagging() {
            c.outbox.push_fresh(screen());
        } else if redraw {
            // After what is queued: that output is part of the screen, but bells, clipboard
            // writes and lines scrolling into the terminal's scrollback are not. One
            // synchronized frame, so a terminal that has them shows no blank screen between.
            let mut frame = b"\x1b[?2026h".to_vec();
            frame.extend_from_slice(&screen());
            frame.extend_from_slice(b"\x1b[?2026l");
            c.outbox.push_output(&Bytes::from(frame));
        }
    }

    /// A client dropped what it had not shown: it gets the screen as it is now instead of its
    /// queue, which is as stale.
    pub fn refresh(&mut self, id: ClientId, screen: impl FnOnce() -> Bytes) {
        if let Some(c) = self.attached.get_mut(&id) {
            c.redraw = false;
            c.outbox.push_fresh(screen());
        }
    }

    /// Detaches everyone; returns whether a writer was among them.
    pub fn detach_all(&mut self) -> bool {
        let mut writer = false;
        for (_, client) in self.attached.drain() {
            writer |= !client.read_only;
            client.outbox.end(Control::Detached);
        }
        writer
    }

    /// The server hands over to a new one: every client reconnects and attaches again.
    /// Returns the clients that could type.
    pub fn leave_all(&mut self) -> Vec<ClientId> {
        let mut writers = Vec::new();
        for (id, client) in self.attached.drain() {
            if !client.read_only {
                writers.push(id);
            }
            client.outbox.end(Control::Upgrading);
        }
        writers
    }

    /// The program ended: every client ends on the final screen, then the message. A client
    /// that had fallen behind gets that screen fresh instead of its dropped backlog.
    pub fn end_all(&mut self, message: &str, final_screen: impl Fn() -> Bytes) {
        if self.attached.is_empty() {
            return;
        }
        let screen = final_screen();
        for (_, client) in self.attached.drain() {
            if client.outbox.is_lagging() {
                client.outbox.push_fresh(screen.clone());
            }
            client.outbox.end(Control::Exited {
                message: message.to_string(),
                screen: screen.clone(),
            });
        }
    }
}
