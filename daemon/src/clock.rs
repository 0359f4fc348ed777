//! The daemon's clock, passed in: every timestamp and "today" (daily budgets, model shutdown
//! dates) comes from the [`Clock`] the daemon was started with, so tests can fix the date.
//! Timestamps are RFC 3339 UTC with exactly three fractional digits, so they sort as strings.

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Where the daemon reads the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// `None`: the system clock.
    fixed: Option<OffsetDateTime>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that always says `at`.
    pub fn fixed(at: OffsetDateTime) -> Clock {
        Clock { fixed: Some(at) }
    }

    /// Now, as an instant.
    pub fn now_utc(&self) -> OffsetDateTime {
        self.fixed.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// Now, as RFC 3339 UTC with millisecond precision.
    pub fn now(&self) -> String {
        format(self.now_utc())
    }

    /// Today's UTC date, `YYYY-MM-DD`.
    pub fn today(&self) -> String {
        let mut now = self.now();
        now.truncate(10);
        now
    }
}

/// The S3 client signs its requests with this clock, so a request's time is kromad's time.
impl aws_smithy_async::time::TimeSource for Clock {
    fn now(&self) -> std::time::SystemTime {
        self.now_utc().into()
    }
}

/// `at` as RFC 3339 UTC with exactly three fractional digits.
pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_have_a_fixed_width() {
        assert_eq!(
            format(datetime!(2026-11-27 00:54:14 UTC)),
            "2026-11-27T00:54:14.000Z"
        );
        assert_eq!(
            format(datetime!(2026-11-27 00:54:14.4669 UTC)),
            "2026-11-27T00:54:14.466Z"
        );
        assert_eq!(
            format(datetime!(2026-11-27 01:54:14 +01:00)),
            "2026-11-27T00:54:14.000Z"
        );
    }

    #[test]
    fn a_fixed_clock_fixes_today() {
        let clock = Clock::fixed(datetime!(2026-12-31 23:59:59.999 UTC));
        assert_eq!(clock.now(), "2026-12-31T23:59:59.999Z");
        assert_eq!(clock.today(), "2026-12-31");
    }
}
