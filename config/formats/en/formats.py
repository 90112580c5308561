# Times to the second with their zone, as on the dashboard: at 3 a.m. "Nov. 29, 2026, 3:04 a.m."
# cannot tell which of two failures came first, nor in which zone it happened. Input formats stay Django's.
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
