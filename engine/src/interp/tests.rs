//! Interpreter tests: written by a helper from the AWS documentation.
