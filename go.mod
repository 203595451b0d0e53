module github.com/hyperbola-in/terraform-provider-hyperbola

go 1.26.0
