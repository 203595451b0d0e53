package kube

import (
	"testing"
)

func TestOptionalClasses(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	o.StorageClass, o.IngressClass, o.ClusterIssuer = "", "", ""
	pvc, err := PersistentVolumeClaim(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.StorageClassName != nil {
		t.Errorf("storage class = %q, want unset (the cluster's default)", *pvc.Spec.StorageClassName)
	}
	ing, err := Ingress(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	if ing.Spec.IngressClassName != nil {
		t.Errorf("ingress class = %q, want unset", *ing.Spec.IngressClassName)
	}
	if _, ok := ing.Annotations["cert-manager.io/cluster-issuer"]; ok {
		t.Error("cluster-issuer annotation without an issuer")
	}
}
