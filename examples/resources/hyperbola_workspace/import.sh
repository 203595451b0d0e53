# Import a workspace by its id. Hyperbola hands the IDE password out only at
# creation, so `password` is null after an import. A `timeouts` block in the
# configuration then shows as an in-place change that touches nothing.
terraform import hyperbola_workspace.dev ab12cd34
