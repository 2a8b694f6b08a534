//! Tests of this area are added by its issue.
