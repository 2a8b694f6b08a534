//! Shared helpers for the teaching demos.
