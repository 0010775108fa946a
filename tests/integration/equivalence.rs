//! Property: the multi-branch net and its fold compute the same function.
