//! Tests of the HTTP input.
