package cluster

import "strconv"

// KeyShares estimates each member's fraction of placement keys by placing
// samples keys, as reported by `strata report`.
func (r *Ring) KeyShares(samples int) map[string]float64 {
	out := map[string]float64{}
	if r.Len() == 0 || samples <= 0 {
		return out
	}
	for i := range samples {
		out[r.Owner("share-sample/"+strconv.Itoa(i))]++
	}
	for id := range out {
		out[id] /= float64(samples)
	}
	return out
}

// Weight is the ring weight of a member, 0 if absent.
func (r *Ring) Weight(id string) float64 {
	for _, m := range r.Members() {
		if m.ID == id {
			if m.Weight <= 0 {
				return 1
			}
			return m.Weight
		}
	}
	return 0
}

// MovedFraction is the fraction of keys whose owner differs between two rings.
func MovedFraction(before, after *Ring, keys []string) float64 {
	if len(keys) == 0 {
		return 0
	}
	moved := 0
	for _, k := range keys {
		if before.Owner(k) != after.Owner(k) {
			moved++
		}
	}
	return float64(moved) / float64(len(keys))
}
