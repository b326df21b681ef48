//! Task invokers: HTTP, registered processes, activities, callbacks (task
//! tokens), nested executions and mocked responses, each reaching only what
//! the operator's configuration allows.

pub mod token;
