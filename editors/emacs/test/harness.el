;;; harness.el --- drive genls.el in batch Emacs for emacs_test.go  -*- lexical-binding: t -*-

;; emacs -Q --batch -l .../eglot.el -l genls.el -l test/harness.el
;;
;; Everything comes from GENLS_TEST_* environment variables; the outcome
;; is the written buffer (GENLS_TEST_OUT) plus a JSON report
;; (GENLS_TEST_RESULT).  Emacs exits with 0 when the session ran, even if
;; the text is wrong: the Go test compares the bytes.

(require 'json)
(require 'subr-x)

(defun genls-test-env (key &optional default)
  (let ((v (getenv (concat "GENLS_TEST_" key))))
    (if (and v (not (string-empty-p v))) v default)))

(defvar genls-test-report nil)
(defun genls-test-put (key value)
  (setq genls-test-report (plist-put genls-test-report key value)))

(defvar genls-test-t0 (float-time))
(defun genls-test-ms () (round (* 1000 (- (float-time) genls-test-t0))))

(defvar genls-test-last-change nil)
(defvar genls-test-changes 0)

;; Bounds past which the session stops waiting (0: none): a server that
;; re-sends its text forever grows the buffer without end, and must fail
;; fast.
(defvar genls-test-max-edits (string-to-number (genls-test-env "MAX_EDITS" "0")))
(defvar genls-test-max-bytes (string-to-number (genls-test-env "MAX_BYTES" "0")))
(defvar genls-test-apply-edits 0)
(defvar genls-test-runaway nil)

(defun genls-test-after-change (&rest _)
  (setq genls-test-last-change (float-time))
  (unless (plist-get genls-test-report :first_change_ms)
    (genls-test-put :first_change_ms (genls-test-ms)))
  (cl-incf genls-test-changes)
  (when (and (> genls-test-max-bytes 0) (not genls-test-runaway)
             (> (buffer-size) genls-test-max-bytes))
    (setq genls-test-runaway
          (format "the buffer grew to %d characters (more than %d) after %d workspace/applyEdit requests"
                  (buffer-size) genls-test-max-bytes genls-test-apply-edits))))

(defun genls-test-count-edit (apply wedit &rest args)
  "Count workspace/applyEdit requests; refuse them once the session ran away."
  (cl-incf genls-test-apply-edits)
  (when (and (> genls-test-max-edits 0) (not genls-test-runaway)
             (> genls-test-apply-edits genls-test-max-edits))
    (setq genls-test-runaway
          (format "more than %d workspace/applyEdit requests" genls-test-max-edits)))
  (if genls-test-runaway
      (jsonrpc-error "test session stopped: %s" genls-test-runaway)
    (apply apply wedit args)))
(advice-add 'eglot--apply-workspace-edit :around #'genls-test-count-edit)

(defun genls-test-idle ()
  "Do what Emacs does when the user is idle, which batch mode never is:
eglot sends textDocument/didChange from an idle timer, once the buffer has
not changed for `eglot-send-changes-idle-time' (0.5 s by default)."
  (when (and eglot--change-idle-timer genls-test-last-change
             (> (- (float-time) genls-test-last-change) eglot-send-changes-idle-time))
    (let ((timer eglot--change-idle-timer))
      (cancel-timer timer)
      (funcall (timer--function timer)))))

(defun genls-test-wait (secs pred)
  "Pump process output, idling as a user would, until PRED or SECS pass.
A runaway session stops the wait at once."
  (let ((deadline (+ (float-time) secs)))
    (while (and (not (funcall pred)) (not genls-test-runaway)
                (< (float-time) deadline))
      (accept-process-output nil 0.01)
      (genls-test-idle))
    (funcall pred)))

(defun genls-test-quiet-for (secs)
  (lambda () (and genls-test-last-change
                  (> (- (float-time) genls-test-last-change) secs))))

(defun genls-test-finish (code)
  (genls-test-put :code code)
  (genls-test-put :changes genls-test-changes)
  (genls-test-put :apply_edits genls-test-apply-edits)
  (genls-test-put :runaway genls-test-runaway)
  (let ((coding-system-for-write 'utf-8-unix))
    (with-temp-file (genls-test-env "RESULT")
      (insert (json-encode genls-test-report))))
  (kill-emacs code))

(defun genls-test-line-col (spec)
  "Point at SPEC \"LINE,COL\" (1-based line, character column)."
  (let ((parts (mapcar #'string-to-number (split-string spec ","))))
    (save-excursion
      (goto-char (point-min))
      (forward-line (1- (nth 0 parts)))
      (forward-char (nth 1 parts))
      (point))))

(defun genls-test-dump-events (server)
  (let ((file (genls-test-env "EVENTS")))
    (when (and file server)
      (let ((coding-system-for-write 'utf-8-unix))
        (with-current-buffer (jsonrpc-events-buffer server)
          (write-region (point-min) (point-max) file nil 'silent))))))

(defun genls-test-run ()
  (let* ((file (genls-test-env "FILE"))
         (scenario (genls-test-env "SCENARIO" "range"))
         (timeout (string-to-number (genls-test-env "TIMEOUT" "20")))
         expect server)
    (genls-test-put :emacs emacs-version)
    (genls-test-put :scenario scenario)
    (setq genls-program (list (genls-test-env "BIN") "--log-level" "debug"
                              "--log-file" (genls-test-env "SERVER_LOG")))
    (setq genls-settings (json-parse-string (genls-test-env "SETTINGS" "{}")
                                            :object-type 'plist))
    (genls-setup)
    (setq eglot-sync-connect t)
    ;; UTF-8, with the line ends detected as a user's Emacs does: a file
    ;; with CRLF line ends is visited as utf-8-dos, "\n" in the buffer.
    (let ((coding-system-for-read 'utf-8))
      (find-file file))
    (genls-test-put :eol (pcase (coding-system-eol-type buffer-file-coding-system)
                           (0 "unix") (1 "dos") (2 "mac") (_ "undecided")))
    ;; The expected file, decoded as the visited one, to compare with the
    ;; buffer's text.
    (let ((f (genls-test-env "EXPECT_FILE"))
          (coding-system-for-read buffer-file-coding-system))
      (when f
        (setq expect (with-temp-buffer (insert-file-contents f) (buffer-string)))))
    (text-mode)
    ;; As M-x eglot: the contact comes from `eglot-server-programs'.
    (call-interactively #'eglot)
    (unless (genls-test-wait 10 (lambda () (and (eglot-current-server) eglot--managed-mode)))
      (error "eglot did not start genls for the buffer"))
    (setq server (eglot-current-server))
    (genls-test-put :init_ms (genls-test-ms))
    (add-hook 'after-change-functions #'genls-test-after-change nil t)
    (unwind-protect
        (progn
          (pcase scenario
            ("here"
             (goto-char (genls-test-line-col (genls-test-env "POINT")))
             (genls-generate (point) (point)))
            (_
             (let* ((lines (mapcar #'string-to-number
                                   (split-string (genls-test-env "RANGE" "1,1") ",")))
                    (beg (save-excursion (goto-char (point-min))
                                         (forward-line (1- (nth 0 lines)))
                                         (point)))
                    (end (save-excursion (goto-char (point-min))
                                         (forward-line (1- (nth 1 lines)))
                                         (line-end-position))))
               ;; As a user would: mark the region, then M-x genls-generate.
               (transient-mark-mode 1)
               (goto-char beg)
               (push-mark end t t)
               (exchange-point-and-mark)
               (call-interactively #'genls-generate))))
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
          ;; Written as saving the buffer would: with its own coding system.
          (let ((coding-system-for-write buffer-file-coding-system))
            (write-region (point-min) (point-max) (genls-test-env "OUT") nil 'silent)))
      (genls-test-dump-events server)
      (ignore-errors (eglot-shutdown server))
      (genls-test-put :server_stopped (not (jsonrpc-running-p server))))))

(condition-case err
    (progn (genls-test-run) (genls-test-finish 0))
  (error (genls-test-put :error (format "%S" err))
         (genls-test-finish 1)))

;;; harness.el ends here
