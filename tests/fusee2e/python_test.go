package fusee2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonMultiprocessingReaders reads files from forked processes and
// their threads at once (as DataLoader workers do) and checks every byte.
func TestPythonMultiprocessingReaders(t *testing.T) {
	needPython(t, "hashlib", "multiprocessing")
	files := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 120 {
		files[fmt.Sprintf("part-%d/f%03d.bin", i%4, i)] = randBytes(t, 1000+rng.IntN(300_000))
	}
	for i := range 3 {
		files[fmt.Sprintf("large/l%d.bin", i)] = randBytes(t, 12<<20+i)
	}
	c, _ := newS3Cluster(t, files, nil)
	srv := mount(t, c.Client, testConfig(t), "/data")
	script := writeScript(t, `
import hashlib, json, os, sys, threading
from multiprocessing import Pool

root = sys.argv[1]

def digest(rel):
    p = os.path.join(root, rel)
    size = os.path.getsize(p)
    # Whole-file sequential read, plus 4 threads reading quarters.
    with open(p, 'rb') as f:
        whole = hashlib.sha256(f.read()).hexdigest()
    parts = [None] * 4
    def part(i):
        lo, hi = size * i // 4, size * (i + 1) // 4
        with open(p, 'rb') as f:
            f.seek(lo)
            parts[i] = f.read(hi - lo)
    ts = [threading.Thread(target=part, args=(i,)) for i in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    return rel, whole, hashlib.sha256(b''.join(parts)).hexdigest()

if __name__ == '__main__':
    rels = []
    for d, _, names in os.walk(root):
        rels += [os.path.relpath(os.path.join(d, n), root) for n in names]
    with Pool(6) as pool:
        out = {rel: [a, b] for rel, a, b in pool.imap_unordered(digest, rels * 2)}
    json.dump(out, sys.stdout)
`)
	var got map[string][2]string
	if err := json.Unmarshal([]byte(run(t, python, script, srv.Dir())), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("python saw %d files, want %d", len(got), len(files))
	}
	for k, v := range files {
		if got[k][0] != sha(v) || got[k][1] != sha(v) {
			t.Errorf("%s: sha256 %v, want %s", k, got[k], sha(v))
		}
	}
}

// imageDataset makes an ImageFolder-style tree: classes × perClass small
// PNGs of random sizes and pixels.
func imageDataset(t testing.TB, classes, perClass int) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	files := map[string][]byte{}
	for c := range classes {
		for i := range perClass {
			w, h := 8+rng.IntN(40), 8+rng.IntN(40)
			img := image.NewRGBA(image.Rect(0, 0, w, h))
			for y := range h {
				for x := range w {
					img.Set(x, y, color.RGBA{uint8(rng.UintN(256)), uint8(rng.UintN(256)), uint8(rng.UintN(256)), 255})
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			files[fmt.Sprintf("train/class%02d/img%05d.png", c, i)] = buf.Bytes()
		}
	}
	return files
}

// TestPyTorchDataLoader iterates an ImageFolder dataset served from MinIO
// through the mount with several DataLoader worker processes, decoding every
// image and checking every sample's bytes.
func TestPyTorchDataLoader(t *testing.T) {
	needPython(t, "torch", "torchvision", "PIL")
	files := imageDataset(t, 10, 250)
	c, _ := newS3Cluster(t, files, nil)
	srv := mount(t, c.Client, testConfig(t), "/data")
	script := writeScript(t, `
import hashlib, io, json, os, sys
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder
from torchvision.transforms.functional import pil_to_tensor
from PIL import Image

root = sys.argv[1]

def read_bytes(path):
    with open(path, 'rb') as f:
        return f.read()

class Samples(Dataset):
    def __init__(self, root):
        self.folder = ImageFolder(root, loader=read_bytes)
    def __len__(self):
        return len(self.folder)
    def __getitem__(self, i):
        data, label = self.folder[i]
        img = Image.open(io.BytesIO(data))
        x = pil_to_tensor(img.convert('RGB'))
        path = self.folder.samples[i][0]
        return os.path.relpath(path, root), hashlib.sha256(data).hexdigest(), label, tuple(x.shape)

def keep(batch):
    return batch

if __name__ == '__main__':
    ds = Samples(root)
    dl = DataLoader(ds, batch_size=64, shuffle=True, num_workers=3, collate_fn=keep)
    out = {}
    for epoch in range(2):
        for batch in dl:
            for rel, h, label, shape in batch:
                assert shape[0] == 3, shape
                if epoch == 0:
                    out[rel] = [h, label]
                else:
                    assert out[rel][0] == h, rel
    json.dump({'classes': ds.folder.classes, 'samples': out}, sys.stdout)
`)
	var got struct {
		Classes []string
		Samples map[string][2]any
	}
	if err := json.Unmarshal([]byte(run(t, python, script, filepath.Join(srv.Dir(), "train"))), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Classes) != 10 || len(got.Samples) != len(files) {
		t.Fatalf("DataLoader saw %d classes and %d samples, want 10 and %d", len(got.Classes), len(got.Samples), len(files))
	}
	for k, v := range files {
		rel := strings.TrimPrefix(k, "train/")
		s, ok := got.Samples[rel]
		if !ok || s[0] != sha(v) {
			t.Errorf("%s: sample %v, want sha256 %s", rel, s, sha(v))
			continue
		}
		if cls := got.Classes[int(s[1].(float64))]; !strings.HasPrefix(rel, cls+"/") {
			t.Errorf("%s: label %s", rel, cls)
		}
	}
	if st := srv.Stats(); st.DaemonOpens < int64(len(files)) {
		t.Errorf("stats %+v: fewer opens than samples", st)
	}

}

// TestTorchCheckpointRoundTrip saves checkpoints with torch.save through the
// mount (streamed: larger than the in-memory head), overwrites one, and
// loads them back with torch.load, in another process too.
func TestTorchCheckpointRoundTrip(t *testing.T) {
	needPython(t, "torch")
	c, bucket := newS3Cluster(t, map[string][]byte{"ckpt/.keep": nil}, nil)
	srv := mount(t, c.Client, testConfig(t), "/data")
	dir := filepath.Join(srv.Dir(), "ckpt")
	save := writeScript(t, `
import sys, torch
path, seed = sys.argv[1], int(sys.argv[2])
torch.manual_seed(seed)
sd = {'layer.weight': torch.randn(1536, 1536), 'layer.bias': torch.randn(1536), 'step': seed}
torch.save(sd, path)
back = torch.load(path)
assert back['step'] == seed
assert torch.equal(back['layer.weight'], sd['layer.weight']) and torch.equal(back['layer.bias'], sd['layer.bias'])
print(float(sd['layer.weight'].sum()))
`)
	load := writeScript(t, `
import sys, torch
sd = torch.load(sys.argv[1])
print(sd['step'], float(sd['layer.weight'].sum()))
`)
	p := filepath.Join(dir, "model.pt")
	sum1 := strings.TrimSpace(run(t, python, save, p, "1"))
	if out := strings.TrimSpace(run(t, python, load, p)); out != "1 "+sum1 {
		t.Fatalf("load in another process: %q, want step 1 and sum %s", out, sum1)
	}
	// Overwrite in place: a later open must see the new checkpoint, not
	// the kernel's cached pages of the old one.
	sum2 := strings.TrimSpace(run(t, python, save, p, "2"))
	if out := strings.TrimSpace(run(t, python, load, p)); out != "2 "+sum2 {
		t.Fatalf("load after overwrite: %q, want step 2 and sum %s", out, sum2)
	}
	obj := mustGetObject(t, bucket, "ckpt/model.pt")
	if len(obj) < 9<<20 {
		t.Fatalf("the checkpoint object has %d bytes", len(obj))
	}
}
