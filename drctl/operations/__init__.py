"""One module per verb: preconditions, which playbook, what to verify."""
