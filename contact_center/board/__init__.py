"""The supervisor board: live metrics, staffing advice (Erlang C and A), reports."""
