package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// WorkspaceTree is a shell script that writes /app/tree as users make workspaces: text and
// binary files (big.bin holds bigBytes random bytes), hidden files and directories, empty
// directories, symlinks (to a file, to a directory, dangling), names with spaces and
// non-ASCII letters, and modes from 600 to 755. The data-path tests (internal/datapath, the
// provider's restore) write it in a workspace and compare TreeManifestScript's output.
func WorkspaceTree(bigBytes int64) string {
	return fmt.Sprintf(`set -eu
rm -rf /app/tree && mkdir -p /app/tree && cd /app/tree
mkdir -p src/pkg docs empty/nested-empty .hidden-dir
printf 'hello, world\n' > hello.txt
printf 'package main\n\nfunc main() {}\n' > src/pkg/main.go
printf 'TOKEN=abc\n' > .env
printf 'hidden\n' > .hidden-dir/file
printf '# notes ✓ é\n' > 'docs/name with spaces ü.md'
head -c %d /dev/urandom > big.bin
head -c 4099 /dev/urandom > small.bin
: > empty-file
printf '#!/bin/sh\necho hi\n' > run.sh
chmod 755 run.sh
chmod 600 .env
chmod 640 src/pkg/main.go
chmod 700 .hidden-dir
chmod 750 docs
ln -s src/pkg/main.go link-to-main
ln -s src link-to-dir
ln -s /nonexistent/target dangling-link
`, bigBytes)
}

// TreeManifestScript prints one line per entry of /app/tree, sorted: the type, the mode, the
// SHA-256 of a file's bytes and a link's target.
const TreeManifestScript = `set -eu
cd /app/tree
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do
  if [ -L "$f" ]; then printf 'l %s -> %s\n' "$f" "$(readlink "$f")"
  elif [ -d "$f" ]; then printf 'd %s %s\n' "$(stat -c %a "$f")" "$f"
  else printf 'f %s %s %s\n' "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"
  fi
done
`

// DiffLines describes how two manifests differ: the lines only want has ("- "), then the
// lines only got has ("+ "), sorted.
func DiffLines(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var out []string
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// Exec runs a shell script in a container of pod (namespace ns) with kubectl exec, as the
// container's user, and returns what it printed.
func (k *Kube) Exec(ctx context.Context, ns, pod, container, script string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(k.Bin, "kubectl"), "--kubeconfig", k.Kubeconfig,
		"-n", ns, "exec", pod, "-c", container, "--", "/bin/sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("exec in %s: %w\n%s", pod, err, stderr.String())
	}
	return stdout.String(), nil
}
