// Command mkimage builds a single-platform (linux/amd64) image from layer tarballs and writes
// it as a docker-archive tarball that `ctr -n k8s.io images import` (and `docker load`) accept.
// images/build-local.sh uses it to build Hyperbola's images without Docker or a registry.
//
//	mkimage -t localhost/hyperbola-backup:local -o backup.tar -user 1000:1000 rootfs.tar
//	mkimage -t REF -o OUT.tar [-entrypoint E]... [-cmd C]... [-user U] [-workdir D] [-env K=V]... LAYER.tar...
//
// Layers are gzip-compressed on the fly; each layer's diffID is taken from the raw tar.
// The config's Env always starts with the usual PATH.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	log.SetFlags(0)
	log.SetPrefix("mkimage: ")
	var tag, out, user, workdir string
	var entrypoint, cmd, env list
	flag.StringVar(&tag, "t", "", "image reference, e.g. localhost/hyperbola-backup:local")
	flag.StringVar(&out, "o", "", "output docker-archive tarball")
	flag.StringVar(&user, "user", "", "config User, e.g. 1000:1000")
	flag.StringVar(&workdir, "workdir", "", "config WorkingDir")
	flag.Var(&entrypoint, "entrypoint", "an Entrypoint element (repeat for more)")
	flag.Var(&cmd, "cmd", "a Cmd element (repeat for more)")
	flag.Var(&env, "env", "K=V added to the config's Env (repeat for more)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkimage -t REF -o OUT.tar [flags] LAYER.tar...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if tag == "" || out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		log.Fatal(err)
	}
	img := empty.Image
	for _, f := range flag.Args() {
		l, err := tarball.LayerFromFile(f)
		if err != nil {
			log.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			log.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint, cf.Config.Cmd = entrypoint, cmd
	cf.Config.User, cf.Config.WorkingDir = user, workdir
	cf.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		log.Fatal(err)
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		log.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s: %s (%s)", out, tag, d)
}
