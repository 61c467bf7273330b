// Tests for the envelope: see mod.rs
