package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// The well-known Azurite development account. The key is public (documented
// by Microsoft for the storage emulators) and only valid against Azurite.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running azurite-blob (the Azure Blob Storage emulator) with
// in-memory persistence. It checks shared-key and SAS signatures. Its methods
// are safe for concurrent use.
type Azurite struct {
	*Process
	// Endpoint is the blob service URL of the development account:
	// http://127.0.0.1:port/devstoreaccount1.
	Endpoint string
	// Account and Key are the development account's name and shared key.
	Account, Key string
}

// ConnectionString returns a connection string for the development account
// on this server.
func (a *Azurite) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", a.Account, a.Key, a.Endpoint)
}

// StartAzurite starts azurite-blob on a free port of 127.0.0.1 and waits until
// it accepts connections. It is stopped when the test ends.
func StartAzurite(t TB) *Azurite {
	t.Helper()
	bin := FindTool(t, "azurite-blob")
	port := FreePort(t)
	a := &Azurite{
		Endpoint: fmt.Sprintf("http://%s/%s", Addr(port), AzuriteAccount),
		Account:  AzuriteAccount, Key: AzuriteKey,
	}
	a.Process = Start(t, "azurite-blob", nil, bin,
		"--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		// --location cannot be combined with --inMemoryPersistence (Azurite
		// refuses to start); in memory, Azurite writes no files.
		"--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent")
	a.WaitReady(t, 60*time.Second, DialReady(Addr(port)))
	return a
}

// CreateContainer creates a container in the development account, failing
// the test on error (an existing container included). Safe for concurrent
// use.
func (a *Azurite) CreateContainer(t TB, name string) {
	t.Helper()
	c, err := container.NewClientFromConnectionString(a.ConnectionString(), name, nil)
	if err != nil {
		t.Fatalf("harness: azure client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("harness: create Azure container %q: %v", name, err)
	}
}
