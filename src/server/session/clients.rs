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
}

#[derive(Default)]
pub struct Clients {
    attached: HashMap<ClientId, Client>,
    next_id: ClientId,
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
        let id = self.next_id;
        let outbox = Arc::new(Outbox::default());
        outbox.push_screen(screen);
        self.attached.insert(
            id,
            Client {
                outbox: outbox.clone(),
                read_only,
                size,
                profile,
            },
        );
        ClientLink { outbox, id }
    }

    pub fn remove(&mut self, id: ClientId) {
        self.attached.remove(&id);
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

    /// Queues output for every client; a client past its bound drops its backlog.
    pub fn forward(&self, data: &Bytes) {
        for client in self.attached.values() {
            client.outbox.push_output(data);
        }
    }

    /// A lagging client caught up: give it the screen as it is now.
    pub fn resync(&self, id: ClientId, screen: impl FnOnce() -> Bytes) {
        if let Some(c) = self.attached.get(&id)
            && c.outbox.is_lagging()
        {
            c.outbox.push_screen(screen());
        }
    }

    pub fn detach_all(&mut self) {
        for (_, client) in self.attached.drain() {
            client.outbox.end(Control::Detached);
        }
    }

    /// The program ended: every client ends on the final screen, then the message. A client
    /// that had fallen behind gets that screen fresh instead of its dropped backlog.
    /// The server hands over to a new one: every client reconnects and attaches again.
    pub fn leave_all(&mut self) {
        for (_, client) in self.attached.drain() {
            client.outbox.end(Control::Upgrading);
        }
    }

    pub fn end_all(&mut self, message: &str, final_screen: impl Fn() -> Bytes) {
        for (_, client) in self.attached.drain() {
            if client.outbox.is_lagging() {
                client.outbox.push_screen(final_screen());
            }
            client.outbox.end(Control::Exited(message.to_string()));
        }
    }
}
