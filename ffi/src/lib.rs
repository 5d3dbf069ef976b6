//! C ABI for squeeze (issue 7 fills this in).
