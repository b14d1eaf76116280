//! cxr-server: the HTTP screening service and its web page.
//! Started by `cxr serve`.
