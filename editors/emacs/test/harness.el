;;; harness.el --- drive genls.el in batch Emacs for emacs_test.go  -*- lexical-binding: t -*-

;; emacs -Q --batch -l .../eglot.el -l genls.el -l test/harness.el
;;
;; Everything comes from GENLS_TEST_* environment variables; the outcome
;; is the written buffer (GENLS_TEST_OUT) plus a JSON report
;; (GENLS_TEST_RESULT).  Emacs exits with 0 when the session ran, even if
;; the text is wrong: the Go test compares the bytes.

(load (expand-file-name "common.el" (file-name-directory load-file-name)))

(defun genls-test-run ()
  (let* ((scenario (genls-test-env "SCENARIO" "range"))
         (timeout (string-to-number (genls-test-env "TIMEOUT" "20")))
         (server (genls-test-start))
         expect)
    (genls-test-put :scenario scenario)
    ;; The expected file, decoded as the visited one, to compare with the
    ;; buffer's text.
    (let ((f (genls-test-env "EXPECT_FILE"))
          (coding-system-for-read buffer-file-coding-system))
      (when f
        (setq expect (with-temp-buffer (insert-file-contents f) (buffer-string)))))
    (unwind-protect
        (progn
          (pcase scenario
            ("here"
             (goto-char (genls-test-line-col (genls-test-env "POINT")))
             (genls-generate (point) (point)))
            (_
             ;; As a user would: mark the region, then M-x genls-generate.
             (genls-test-mark-lines (genls-test-env "RANGE" "1,1"))
             (call-interactively #'genls-generate)))
          (genls-test-put :command_returned_ms (genls-test-ms))
          (when (string= scenario "typing")
            ;; The user types elsewhere while the text streams in: a new first
            ;; line once the first token has arrived, and more at the end.
            (let ((wait-for (genls-test-env "TYPE_AFTER")))
              (unless (or (genls-test-wait timeout (lambda ()
                                                     (save-excursion
                                                       (goto-char (point-min))
                                                       (search-forward wait-for nil t))))
                          genls-test-runaway)
                (error "buffer never contained %S: %S" wait-for (buffer-string)))
              (unless genls-test-runaway
                (save-excursion
                  (goto-char (point-min))
                  (insert "typed above\n")
                  (goto-char (point-max))
                  (skip-chars-backward "\n")
                  (insert " and below"))
                (genls-test-put :typed_at_changes genls-test-changes))))
          (when (string= scenario "cancel")
            (let ((wait-for (genls-test-env "CANCEL_AFTER")))
              (unless (or (genls-test-wait timeout (lambda ()
                                                     (save-excursion
                                                       (goto-char (point-min))
                                                       (search-forward wait-for nil t))))
                          genls-test-runaway)
                (error "buffer never contained %S: %S" wait-for (buffer-string)))
              (genls-cancel)
              (genls-test-put :cancelled_ms (genls-test-ms))))
          (genls-test-put :reached_expected
                          (and (genls-test-wait
                                timeout
                                (lambda ()
                                  (and expect
                                       (string= (buffer-substring-no-properties (point-min) (point-max))
                                                expect))))
                               t))
          ;; Any edit still on its way shows up as a failure, not a race.
          (genls-test-wait 5 (genls-test-quiet-for 0.5))
          (genls-test-put :done_ms (genls-test-ms))
          (genls-test-write))
      (genls-test-dump-events server)
      (ignore-errors (eglot-shutdown server))
      (genls-test-put :server_stopped (not (jsonrpc-running-p server))))))

(condition-case err
    (progn (genls-test-run) (genls-test-finish 0))
  (error (genls-test-put :error (format "%S" err))
         (genls-test-finish 1)))

;;; harness.el ends here
