"""Monthly usage reports: content from the pseudonymised dataset, PDF/A rendering, signing, jobs and HTTP."""
