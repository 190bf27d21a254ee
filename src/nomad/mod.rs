//! Everything that speaks Nomad: the event stream's wire types, the NDJSON line
//! reader that frames a byte stream into lines, subscriptions (what a
//! subscriber asks for, and Nomad's rules for matching it), the HTTP client,
//! the reasons Nomad gives for closing a stream, what it says about the ACL
//! token in use, the namespace list (watched for new namespaces) and the
//! cluster's identity (to tell a restarted cluster from another one).

pub mod acl;
pub mod client;
pub mod close_reason;
pub mod details;
mod fields;
pub mod identity;
pub mod lines;
pub mod namespaces;
pub mod stamps;
pub mod subscription;
pub mod wire;

pub use acl::{TokenCheck, TokenInfo};
pub use client::{NomadClient, ReadAnswer, ReadError, StreamError};
pub use close_reason::CloseReason;
pub use identity::{ClusterIdentity, IdentityError};
pub use lines::{LineItem, LineReader};
pub use namespaces::{Namespace, NamespaceList, NamespacesError};
pub use subscription::Subscription;
pub use wire::{Event, Frame, Line, parse_line};
