# Import a workspace by its id. Hyperbola hands the IDE password out only at
# creation, so `password` is null after an import.
terraform import hyperbola_workspace.dev ab12cd34
