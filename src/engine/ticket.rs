//! Dropping stale results on the caller's side (television's preview tickets): remember the
//! newest request of one kind, with whatever the caller needs to place its result, and accept
//! only that request's result.
use super::message::RequestId;

/// The newest request of one kind (say, the CAM for what is on screen) and its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest<T> {
    current: Option<(RequestId, T)>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest { current: None }
    }
}

impl<T> Latest<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `id` as the newest request; every earlier one becomes stale. An id older than
    /// the one remembered is ignored (ids increase with submission).
    pub fn issue(&mut self, id: RequestId, context: T) {
        if self
            .current
            .as_ref()
            .is_some_and(|(newest, _)| id < *newest)
        {
            return;
        }
        self.current = Some((id, context));
    }

    /// Whether `id` is the request still waited for.
    pub fn is_current(&self, id: RequestId) -> bool {
        self.current
            .as_ref()
            .is_some_and(|(newest, _)| *newest == id)
    }

    /// The request waited for, if any (e.g. to show a spinner, or to cancel it).
    pub fn waiting(&self) -> Option<(RequestId, &T)> {
        self.current.as_ref().map(|(id, context)| (*id, context))
    }

    /// For an arriving result: its context when `id` is the request waited for (which is then
    /// no longer waited for), None when the result is stale and should be dropped.
    pub fn accept(&mut self, id: RequestId) -> Option<T> {
        if self.is_current(id) {
            self.current.take().map(|(_, context)| context)
        } else {
            None
        }
    }

    /// Stops waiting (after cancelling, say); returns the request that was waited for.
    pub fn clear(&mut self) -> Option<RequestId> {
        self.current.take().map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_result_is_accepted() {
        let mut latest = Latest::new();
        latest.issue(RequestId(1), "exam 1");
        latest.issue(RequestId(2), "exam 2");
        assert!(!latest.is_current(RequestId(1)));
        assert_eq!(latest.accept(RequestId(1)), None);
        assert_eq!(latest.waiting(), Some((RequestId(2), &"exam 2")));
        assert_eq!(latest.accept(RequestId(2)), Some("exam 2"));
        assert_eq!(latest.waiting(), None);
        assert_eq!(latest.accept(RequestId(2)), None, "accepted once");
    }

    #[test]
    fn an_older_id_does_not_replace_a_newer_one() {
        let mut latest = Latest::new();
        latest.issue(RequestId(5), 'b');
        latest.issue(RequestId(4), 'a');
        assert!(latest.is_current(RequestId(5)));
        assert_eq!(latest.clear(), Some(RequestId(5)));
        assert_eq!(latest.accept(RequestId(5)), None);
        latest.issue(RequestId(4), 'a');
        assert!(
            latest.is_current(RequestId(4)),
            "after clearing, any id is taken"
        );
    }
}
