;;; common.el --- what test/harness.el and test/review.el share  -*- lexical-binding: t -*-

;; Everything comes from GENLS_TEST_* environment variables; the outcome
;; is a JSON report (GENLS_TEST_RESULT) and the written buffer
;; (GENLS_TEST_OUT).

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

(defun genls-test-start ()
  "Start genls as a user would and visit GENLS_TEST_FILE with eglot on.
Returns the eglot server; the file's buffer is current."
  (genls-test-put :emacs emacs-version)
  (setq genls-program (list (genls-test-env "BIN") "--log-level" "debug"
                            "--log-file" (genls-test-env "SERVER_LOG")))
  (setq genls-settings (json-parse-string (genls-test-env "SETTINGS" "{}")
                                          :object-type 'plist))
  (genls-setup)
  (setq eglot-sync-connect t)
  ;; UTF-8, with the line ends detected as a user's Emacs does: a file
  ;; with CRLF line ends is visited as utf-8-dos, "\n" in the buffer.
  (let ((coding-system-for-read 'utf-8))
    (find-file (genls-test-env "FILE")))
  (genls-test-put :eol (pcase (coding-system-eol-type buffer-file-coding-system)
                         (0 "unix") (1 "dos") (2 "mac") (_ "undecided")))
  (text-mode)
  ;; As M-x eglot: the contact comes from `eglot-server-programs'.
  (call-interactively #'eglot)
  (unless (genls-test-wait 10 (lambda () (and (eglot-current-server) eglot--managed-mode)))
    (error "eglot did not start genls for the buffer"))
  (genls-test-put :init_ms (genls-test-ms))
  (add-hook 'after-change-functions #'genls-test-after-change nil t)
  (eglot-current-server))

(defun genls-test-mark-lines (spec)
  "Make the lines SPEC \"FIRST,LAST\" (1-based) the active region, point first."
  (let* ((lines (mapcar #'string-to-number (split-string spec ",")))
         (beg (save-excursion (goto-char (point-min))
                              (forward-line (1- (nth 0 lines)))
                              (point)))
         (end (save-excursion (goto-char (point-min))
                              (forward-line (1- (nth 1 lines)))
                              (line-end-position))))
    (transient-mark-mode 1)
    (goto-char beg)
    (push-mark end t t)
    (exchange-point-and-mark)))

(defun genls-test-write ()
  "Write the buffer to GENLS_TEST_OUT as saving it would: in its own coding system."
  (let ((coding-system-for-write buffer-file-coding-system))
    (write-region (point-min) (point-max) (genls-test-env "OUT") nil 'silent)))

;;; common.el ends here
