//! Unit tests of the nginx renderer on hand-built plans.

use super::*;
