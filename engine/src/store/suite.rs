//! The shared suite every backend passes.
