package postgres

import (
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

func TestTextSearch(t *testing.T) {
	dsns := map[string]string{}
	storetest.RunTextSearch(t, func(t *testing.T, dir string) store.Store {
		if dsns[dir] == "" {
			dsns[dir] = freshDB(t)
		}
		return openTest(t, dsns[dir], Options{})
	})
}

func TestTextSearchScan(t *testing.T) {
	storetest.RunTextSearchScan(t, func(t *testing.T) store.Store {
		return openTest(t, freshDB(t), Options{})
	})
}
