# tflint configuration for everything under infra/ (run by scripts/lint-infra.sh).
#
# Only the terraform ruleset is used, and it is bundled inside the tflint binary, so no
# plugin is downloaded: there is no `source`/`version` here on purpose (adding one would make
# `tflint --init` fetch a plugin from the network).
config {
  # Lint the module calls of environments/dev with the local modules they point at.
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# Beyond "recommended": the project's own rules for infra/ ("every variable and output is
# described", one layout for every module, snake_case names, # comments only).
rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_standard_module_structure" {
  enabled = true
}

rule "terraform_naming_convention" {
  enabled = true
}

rule "terraform_comment_syntax" {
  enabled = true
}
