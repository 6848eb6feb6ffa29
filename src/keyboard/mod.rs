//! Keyboard input from a user's terminal: the detach chord and focus reports picked out of it,
//! by whichever side reads the keys (the attach client, or the server once the client handed
//! it the terminal; see server/keyboard.rs).

pub mod chord;
pub mod focus;
