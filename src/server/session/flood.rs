//! Reading a flood: while the program keeps the pty full, one turn reads several batches and
//! models each batch, once it was passed on, in slices between the reads of the next.
//!
//! Why: the pty hands over about 4 KiB per read and then asks the tty's flush worker for more;
//! a read right after waits for that worker (the server sleeps, then is woken: two context
//! switches per 4 KiB). Modelling a slice of output between two reads gives the worker that
//! time. Clients still get every batch before the model sees it, what the model finds in a
//! batch (answers, signals, text a `wait` looks for) is taken once that batch is modelled, and
//! the model has seen all output by the end of the turn, before any command runs.

use bytes::Bytes;

use crate::server::outbox::CLIENT_QUEUE_BYTES;

use super::{READ_BATCH, Session, batch_full, fill_batch, model_bytes, read_once};

/// Batches one turn reads at most while the pty stays full. Bounds how long commands wait in
/// a flood: about this many batches' modelling (half a millisecond each here).
const FLOOD_BATCHES: usize = 8;
/// Output modelled between two reads: about what one read takes from the pty.
const SLICE: usize = 4096;
/// No further batch is read this turn while a client has this much output queued: its writer
/// runs only between turns, and a client past its bound loses its backlog
/// ([`CLIENT_QUEUE_BYTES`]), so a turn never queues more than a quarter of it.
const QUEUED_BEFORE_NEXT_BATCH: usize = CLIENT_QUEUE_BYTES / 4;

/// Whether a batch just read says a flood is on: it filled, so the pty likely has more.
pub(super) fn starts(batch: &Bytes) -> bool {
    batch_full(batch.len())
}

impl Session {
    /// Handles a full batch and the batches that follow it this turn (see the module's doc).
    pub(super) fn on_flood(&mut self, first: Bytes) {
        let mut unmodelled = first;
        self.pass_on(&unmodelled);
        for _ in 1..FLOOD_BATCHES {
            if self.clients.most_queued() + READ_BATCH > QUEUED_BEFORE_NEXT_BATCH {
                break;
            }
            let (next, modelled) = self.read_modelling(&unmodelled);
            self.model_bytes(&unmodelled[modelled..]);
            // Once per batch, as for a batch read alone: a line a `wait --text` looks for
            // could leave history within a turn's batches, and the model keeps a bounded
            // number of signals and answers between two takes.
            self.after_model();
            unmodelled = Bytes::new();
            let Some(next) = next else { break };
            self.pass_on(&next);
            let more = starts(&next);
            unmodelled = next;
            if !more {
                break;
            }
        }
        if !unmodelled.is_empty() {
            self.model_bytes(&unmodelled);
            self.after_model();
        }
    }

    /// Reads the next batch from the pty, modelling a slice of `pending` after each full
    /// read. Returns the batch (`None`: the pty had nothing, or hung up, which the next turn's
    /// read sees: the readiness stays set) and how much of `pending` was modelled.
    fn read_modelling(&mut self, pending: &Bytes) -> (Option<Bytes>, usize) {
        let mut modelled = 0;
        let master = self.master.get_ref();
        let (model, name) = (&mut self.model, &self.name);
        let (filled, _) = fill_batch(
            &mut self.read_buf,
            |buf, limit| read_once(master, buf, limit),
            || {
                let slice = &pending[modelled..pending.len().min(modelled + SLICE)];
                if !slice.is_empty() {
                    model_bytes(model, name, slice);
                    modelled += slice.len();
                }
            },
        );
        let batch = (filled > 0).then(|| self.read_buf.split().freeze());
        (batch, modelled)
    }
}
