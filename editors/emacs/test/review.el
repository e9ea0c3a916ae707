;;; review.el --- drive genls.el's review commands in an interactive Emacs  -*- lexical-binding: t -*-

;; emacs -nw -Q -l .../eglot.el -l genls.el -l test/review.el
;;
;; in a terminal (emacs_test.go gives it one with `script').  Unlike
;; harness.el, which runs in batch mode, this runs Emacs's own command
;; loop: every step is a key sequence the loop reads and runs as a
;; command, as if typed, and the loop closes an undo step after each
;; command.  While text streams in, a do-nothing command runs every 50 ms,
;; as a user moving around would, so a generation's edits are separated by
;; undo boundaries as they are in use.
;;
;; GENLS_TEST_STEPS is a comma-separated list of steps
;; NAME[!][&][~][@LINE:COL][:FIRST-LAST][=MARKS]:
;;
;;   gen          generate from lines FIRST-LAST (default GENLS_TEST_RANGE)
;;   gen-ask      C-u M-x genls-generate on those lines, the instruction
;;                GENLS_TEST_INSTRUCTION typed into the minibuffer
;;   rewrite      M-x genls-rewrite on those whole lines (line ends too),
;;                the instruction typed likewise
;;   accept, discard, regenerate
;;                M-x genls-accept, … at point (with !: C-u, the buffer)
;;   undo         C-/
;;   insert       a command that inserts a line "typed above" at the top
;;                (the report has the text right after it)
;;   insert-undo  that command, then C-/ right after it
;;   insert-wait  a command that inserts that line, then waits 0.3 s for
;;                process output
;;   wait         nothing: wait for the step's text
;;
;; Each step waits for its text (GENLS_TEST_EXPECT_STEPS, a JSON array,
;; null: none), then for the buffer to be quiet for 0.5 s.  With &, a gen
;; step only waits until the buffer contains its text, and the stream goes
;; on during the next steps, until a gen, regenerate or wait step without
;; & ends.  With ~, a gen step runs no command while the text streams in.
;; @LINE:COL moves point first (1-based line, character column);
;; =MARKS waits until the buffer has that many genls notes (flymake), none
;; of a running generation.  The report's "steps" say what each step left:
;; the text, the notes, the server's answer.

(load (expand-file-name "common.el" (file-name-directory load-file-name)))
(require 'flymake)

(defvar genls-test-steps (split-string (genls-test-env "STEPS" "gen") "," t))
(defvar genls-test-expect-steps
  (json-parse-string (genls-test-env "EXPECT_STEPS" "[]") :null-object nil))
(defvar genls-test-timeout (string-to-number (genls-test-env "TIMEOUT" "20")))
(defvar genls-test-server nil)
(defvar genls-test-buffer nil)
(defvar genls-test-step-reports nil)

;;; Commands, run by the command loop from keys.

(defun genls-test-generate ()
  "Mark the lines of the current step and run `genls-generate'."
  (interactive)
  (genls-test-mark-lines genls-test-lines)
  (call-interactively #'genls-generate))

(defvar genls-test-pokes 0)
(defun genls-test-poke ()
  "Do nothing, as a command: what moving around does to undo."
  (interactive)
  (cl-incf genls-test-pokes))

(defvar genls-test-inserted nil "The text right after `genls-test-insert'.")
(defun genls-test-insert ()
  "Insert a line at the top of the buffer, as one command."
  (interactive)
  (save-excursion
    (goto-char (point-min))
    (insert "typed above\n"))
  (setq genls-test-inserted (genls-test-text)))

(defun genls-test-insert-wait ()
  "Insert a line at the top, then wait 0.3 s for output, as one command.
A command that waits for a server (completion, say) reads its output
meanwhile: genls's edits are applied in the middle of the command."
  (interactive)
  (genls-test-insert)
  (let ((deadline (+ (float-time) 0.3)))
    (while (< (float-time) deadline)
      (accept-process-output nil 0.02))))

(defun genls-test-rewrite ()
  "Mark the whole lines of the current step and run `genls-rewrite'."
  (interactive)
  (genls-test-mark-lines genls-test-lines)
  ;; Whole lines: the region goes on to the start of the next line.
  (goto-char (mark))
  (forward-line 1)
  (exchange-point-and-mark)
  (call-interactively #'genls-rewrite))

(defun genls-test-generate-ask ()
  "Mark the lines of the current step and run C-u `genls-generate'."
  (interactive)
  (genls-test-mark-lines genls-test-lines)
  (let ((current-prefix-arg '(4)))
    (call-interactively #'genls-generate)))

(global-set-key (kbd "C-c t g") #'genls-test-generate)
(global-set-key (kbd "C-c t R") #'genls-test-rewrite)
(global-set-key (kbd "C-c t G") #'genls-test-generate-ask)
(global-set-key (kbd "C-c t a") #'genls-accept)
(global-set-key (kbd "C-c t d") #'genls-discard)
(global-set-key (kbd "C-c t r") #'genls-regenerate)
(global-set-key (kbd "C-c t n") #'genls-test-poke)
(global-set-key (kbd "C-c t i") #'genls-test-insert)
(global-set-key (kbd "C-c t w") #'genls-test-insert-wait)

(defvar genls-test-ran nil "Commands the command loop ran since the step began.")
(defun genls-test-record-command ()
  (push this-command genls-test-ran))
(add-hook 'post-command-hook #'genls-test-record-command)

(defun genls-test-type (keys &optional answer)
  "Have the command loop read KEYS next, as if typed.
ANSWER, if given, is typed after them, then RET: the answer to a prompt."
  (setq unread-command-events
        (append unread-command-events (listify-key-sequence (kbd keys))
                (and answer (append (string-to-list answer) (list ?\r))))))

;;; What the server answered to the review commands, however they ran.

(defvar genls-test-answers nil)
(defun genls-test-record-answer (execute server command arguments)
  (let ((result (funcall execute server command arguments)))
    (when (member (format "%s" command) '("genls.accept" "genls.discard" "genls.regenerate"))
      (push (list :command (format "%s" command) :arguments arguments :result result)
            genls-test-answers))
    result))
(advice-add 'eglot-execute-command :around #'genls-test-record-answer)

;;; Observations.

(defun genls-test-text ()
  (with-current-buffer genls-test-buffer
    (buffer-substring-no-properties (point-min) (point-max))))

(defun genls-test-position (pos)
  (save-excursion
    (goto-char pos)
    (list (1- (line-number-at-pos)) (- pos (line-beginning-position)))))

(defun genls-test-marks ()
  "The genls notes flymake has in the buffer."
  (with-current-buffer genls-test-buffer
    (cl-loop for d in (flymake-diagnostics)
             for text = (flymake-diagnostic-text d)
             when (string-prefix-p "genls" text)
             collect (pcase-let ((`(,line ,col) (genls-test-position (flymake-diagnostic-beg d)))
                                 (`(,end-line ,end-col) (genls-test-position (flymake-diagnostic-end d))))
                       (list :line line :col col :end_line end-line :end_col end-col
                             :type (symbol-name (flymake-diagnostic-type d)) :text text)))))

(defun genls-test-settled-marks-p (n)
  (let ((marks (genls-test-marks)))
    (and (= (length marks) n)
         (cl-notany (lambda (m) (string-match-p "genls\\.generating" (plist-get m :text))) marks))))

;;; Steps, one after the other, each waiting on timers so that the command
;;; loop runs in between.

(defun genls-test-fail (err)
  (genls-test-put :error (format "%S" err))
  (genls-test-end 1))

(defmacro genls-test-guard (&rest body)
  `(condition-case err (progn ,@body) (error (genls-test-fail err))))

(defun genls-test-poll (secs pred then)
  "Call THEN with PRED's value once PRED holds or SECS have passed."
  (let* ((deadline (+ (float-time) secs))
         (timer nil))
    (setq timer (run-with-timer
                 0.02 0.02
                 (lambda ()
                   (genls-test-guard
                    (let ((v (funcall pred)))
                      (when (or v (> (float-time) deadline))
                        (cancel-timer timer)
                        (funcall then v)))))))))

(defvar genls-test-lines nil "The region FIRST,LAST of the current gen step.")

(defun genls-test-parse (spec)
  (unless (string-match "\\`\\([a-z-]+\\)\\(.*\\)\\'" spec)
    (error "Bad step %S" spec))
  (let ((name (match-string 1 spec))
        (rest (match-string 2 spec)))
    (list :name name
          :bang (string-match-p "!" rest)
          :async (string-match-p "&" rest)
          :still (string-match-p "~" rest)
          :point (and (string-match "@\\([0-9]+\\):\\([0-9]+\\)" rest)
                      (format "%s,%s" (match-string 1 rest) (match-string 2 rest)))
          :lines (and (string-match ":\\([0-9]+\\)-\\([0-9]+\\)" rest)
                      (format "%s,%s" (match-string 1 rest) (match-string 2 rest)))
          :marks (and (string-match "=\\([0-9]+\\)" rest)
                      (string-to-number (match-string 1 rest))))))

(defvar genls-test-poker nil "The timer running `genls-test-poke' while text streams in.")

(defun genls-test-start-poking ()
  (unless genls-test-poker
    (setq genls-test-pokes 0)
    (setq genls-test-poker (run-with-timer 0.05 0.05 (lambda () (genls-test-type "C-c t n"))))))

(defun genls-test-stop-poking ()
  (when genls-test-poker
    (cancel-timer genls-test-poker)
    (setq genls-test-poker nil)))

(defun genls-test-step (i)
  (if (>= i (length genls-test-steps))
      (genls-test-end 0)
    (let* ((spec (nth i genls-test-steps))
           (step (genls-test-parse spec))
           (name (plist-get step :name))
           (async (plist-get step :async))
           (expect (and (< i (length genls-test-expect-steps))
                        (aref genls-test-expect-steps i)))
           (edits genls-test-apply-edits)
           (answers (length genls-test-answers))
           (streams (member name '("gen" "gen-ask" "rewrite" "regenerate" "wait")))
           (keys (pcase name
                   ("gen" "C-c t g") ("gen-ask" "C-c t G") ("rewrite" "C-c t R") ("accept" "C-c t a") ("discard" "C-c t d")
                   ("regenerate" "C-c t r") ("undo" "C-/") ("insert" "C-c t i")
                   ("insert-undo" "C-c t i C-/") ("insert-wait" "C-c t w") ("wait" nil)
                   (_ (error "Unknown step %S" spec))))
           (command (pcase name
                      ("gen" 'genls-test-generate) ("gen-ask" 'genls-test-generate-ask)
                      ("rewrite" 'genls-test-rewrite) ("accept" 'genls-accept)
                      ("discard" 'genls-discard) ("regenerate" 'genls-regenerate)
                      ("undo" 'undo) ("insert" 'genls-test-insert) ("insert-undo" 'undo)
                      ("insert-wait" 'genls-test-insert-wait))))
      (with-current-buffer genls-test-buffer
        (when (plist-get step :point)
          (deactivate-mark)
          (goto-char (genls-test-line-col (plist-get step :point)))))
      (setq genls-test-lines (or (plist-get step :lines) (genls-test-env "RANGE" "1,1")))
      (setq genls-test-ran nil)
      (when keys
        (genls-test-type (concat (if (plist-get step :bang) "C-u " "") keys)
                         (and (member name '("gen-ask" "rewrite")) (genls-test-env "INSTRUCTION" ""))))
      (when (and streams (not (equal name "wait")) (not (plist-get step :still)))
        (genls-test-start-poking))
      (genls-test-poll
       genls-test-timeout
       (lambda ()
         (and (or (not command) (memq command genls-test-ran))
              (or (not expect)
                  (if async
                      (string-search expect (genls-test-text))
                    (string= (genls-test-text) expect)))))
       (lambda (_)
         (when (and streams (not async))
           (genls-test-stop-poking))
         ;; Any edit still on its way shows up as a failure, not a race.
         (genls-test-poll
          (if genls-test-poker 0 5) (if genls-test-poker #'always (genls-test-quiet-for 0.5))
          (lambda (_)
            (genls-test-poll
             (if (plist-get step :marks) 5 0)
             (lambda () (or (not (plist-get step :marks))
                            (genls-test-settled-marks-p (plist-get step :marks))))
             (lambda (_)
               (let ((report (list :step spec
                                   :text (genls-test-text)
                                   :marks (vconcat (genls-test-marks))
                                   :apply_edits (- genls-test-apply-edits edits)
                                   :pokes (if streams genls-test-pokes 0)
                                   :ran (mapcar (lambda (c) (format "%s" c)) (reverse genls-test-ran))
                                   :inserted (and (or (memq 'genls-test-insert genls-test-ran)
                                                      (memq 'genls-test-insert-wait genls-test-ran))
                                                  genls-test-inserted))))
                 (when (> (length genls-test-answers) answers)
                   (let ((answer (car genls-test-answers)))
                     (setq report (append report (list :result (plist-get answer :result)
                                                       :arguments (json-encode (plist-get answer :arguments)))))))
                 (push report genls-test-step-reports))
               (genls-test-step (1+ i)))))))))))

(defun genls-test-end (code)
  (genls-test-put :steps (vconcat (reverse genls-test-step-reports)))
  (when (buffer-live-p genls-test-buffer)
    (with-current-buffer genls-test-buffer
      (ignore-errors (genls-test-write))))
  (when genls-test-server
    (genls-test-dump-events genls-test-server)
    (ignore-errors (eglot-shutdown genls-test-server))
    (genls-test-put :server_stopped (not (jsonrpc-running-p genls-test-server))))
  (genls-test-finish code))

(run-with-timer
 0.1 nil
 (lambda ()
   (genls-test-guard
    (setq genls-test-server (genls-test-start))
    (setq genls-test-buffer (current-buffer))
    (genls-test-step 0))))

;;; review.el ends here
