"""The public self-service portal: submit an enquiry or complaint, follow it, rate us."""
