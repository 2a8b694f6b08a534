//! Hardening tests (hostile segments, permissions, exhaustion, lifecycle).
