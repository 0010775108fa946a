//! Checkpoint loading: round trips, naming schemes, dtypes and every malformed-file error.
