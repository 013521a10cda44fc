package tokensvc

// FailAt makes the named step of a token's issue ("vault put", "finish")
// fail with the error f returns for it.
func FailAt(s *Service, f func(step string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAt = f
}

// MarkIssuing leaves a pending binding as a crash between the first and
// the last step of issue would: "issuing", naming token.
func MarkIssuing(s *Service, id, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bd binding
	if _, err := s.st.get(bindingKey(id), &bd); err != nil {
		return err
	}
	bd.State, bd.Token = bindingIssuing, token
	b := s.st.newBatch()
	b.put(bindingKey(id), bd)
	return b.commit()
}

// RoutePatterns lists the service's endpoints.
func RoutePatterns(s *Service) []string {
	var out []string
	for _, r := range s.routes() {
		out = append(out, r.pattern)
	}
	return out
}

// LimitRecords counts the stored counts of the cross-account verification
// bounds.
func LimitRecords(s *Service) (int, error) {
	keys, err := s.st.keysUnder("v/", 1<<20)
	return len(keys), err
}

// VerifyFailureAnswerMin is the floor under every failed verification's
// answer.
const VerifyFailureAnswerMin = verifyFailureAnswerMin

// CountHashes returns a function that tells how many password hashes s
// has run since CountHashes was called.
func CountHashes(s *Service) func() int64 {
	start := s.passwordHashes.Load()
	return func() int64 { return s.passwordHashes.Load() - start }
}
