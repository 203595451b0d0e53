package kube

import (
	"strings"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestValidateUserLabels(t *testing.T) {
	ok := []map[string]string{
		nil,
		{},
		{"team": "web", "example.com/cost-center": "cc-42", "env": ""},
		{"a.b/c": strings.Repeat("v", 63)},
		{"kubernetes.io.example.com/x": "y"}, // a domain that merely starts like a reserved one
	}
	for _, l := range ok {
		if err := ValidateUserLabels(l); err != nil {
			t.Errorf("%v: %v", l, err)
		}
	}
	bad := []map[string]string{
		{"hyperbola.dev/session": "zz99zz99"},
		{"hyperbola.dev/anything": "x"},
		{"sub.hyperbola.dev/x": "x"},
		{"app.kubernetes.io/managed-by": "me"},
		{"app.kubernetes.io/name": "x"},
		{"kubernetes.io/hostname": "x"},
		{"node.k8s.io/x": "x"},
		{"Hyperbola.DEV/x": "x"},
		{"bad key": "x"},
		{"": "x"},
		{"/x": "x"},
		{"team": "has space"},
		{"team": strings.Repeat("v", 64)},
		{strings.Repeat("k", 64): "x"},
		{"team": "-leading"},
	}
	for _, l := range bad {
		err := ValidateUserLabels(l)
		if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "labels" {
			t.Errorf("%q: err = %v, want invalid labels", l, err)
		}
	}
	many := map[string]string{}
	for i := range MaxUserLabels + 1 {
		many["k"+strings.Repeat("x", i)] = "v"
	}
	if session.FieldOf(ValidateUserLabels(many)) != "labels" {
		t.Error("too many labels accepted")
	}
	// Builders refuse them too.
	ws := testWorkspace()
	ws.Labels = map[string]string{"hyperbola.dev/session": "zz99zz99"}
	if _, err := Deployment(ws, testOptions()); session.FieldOf(err) != "labels" {
		t.Errorf("Deployment with a reserved label: %v", err)
	}
}

func TestUserLabelsNeverOverrideOurs(t *testing.T) {
	l, err := Labels("ab12cd34", ComponentWorkspace, map[string]string{"team": "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"team":         "web",
		LabelManagedBy: "hyperbola", LabelName: "vs-code", LabelComponent: "workspace", LabelSession: "ab12cd34",
	}
	if len(l) != len(want) {
		t.Fatalf("labels = %v, want %v", l, want)
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if u := UserLabels(l); len(u) != 1 || u["team"] != "web" {
		t.Errorf("UserLabels = %v", u)
	}
}
