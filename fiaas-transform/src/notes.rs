//! Messages upstream logs while building objects; they end up in the deploy's status logs.

/// Severity of a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// What is being done.
    Info,
    /// Something is off but the deploy goes on.
    Warning,
    /// Something was left out (the deploy still goes on, as upstream's does).
    Error,
}

/// The notes of one render, in the order they arose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes(pub Vec<(Level, String)>);

impl Notes {
    pub(crate) fn warning(&mut self, message: String) {
        self.0.push((Level::Warning, message));
    }

    pub(crate) fn error(&mut self, message: String) {
        self.0.push((Level::Error, message));
    }
}
