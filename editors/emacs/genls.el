;;; genls.el --- Stream LLM output into buffers with the genls language server  -*- lexical-binding: t -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: tools, convenience
;; URL: https://github.com/genls/genls

;;; Commentary:

;; genls is a language server that streams text from an LLM endpoint
;; into the document through `workspace/applyEdit'.  This file registers
;; it with eglot and adds these commands:
;;
;;   M-x genls-generate    with an active region, generate from the
;;                         region's text and insert the result right after
;;                         it; without one, continue the buffer at point;
;;                         C-u first asks for an instruction
;;   M-x genls-rewrite     rewrite the region as instructed (asked for;
;;                         empty: none); the new text streams in after the
;;                         original, which goes when you accept it
;;   M-x genls-cancel      stop generating in this buffer (C-u: everywhere)
;;   M-x genls-accept      keep the pending generation at point (or those
;;                         touching the region; C-u: all in the buffer)
;;   M-x genls-discard     remove it, as if it had never run
;;   M-x genls-regenerate  remove it and run the same request again
;;
;; Named actions from the settings (:actions) are code actions under
;; their titles: M-x eglot-code-actions on a region.
;;
;; A generation stays pending, marked with a genls note (flymake), until
;; it is accepted or discarded.  One `undo' removes a whole generation,
;; however many edits brought it.
;;
;; Setup:
;;
;;   (require 'genls)   ; or (load "/path/to/genls.el")
;;   (setq genls-settings
;;         '(:endpoint (:url "http://127.0.0.1:8080" :backend "tgi")
;;           :parameters (:max_new_tokens 128)))
;;   (genls-setup)
;;   (add-hook 'text-mode-hook #'eglot-ensure)   ; or M-x eglot
;;
;; Settings are a plist mirroring the server's JSON settings; JSON arrays
;; are vectors, e.g. :stop_sequences ["\n\n"].  The token is best left to
;; the HF_TOKEN environment variable.
;;
;; eglot manages a buffer with one server, so genls is registered only
;; for `genls-major-modes'; a mode that already has a language server
;; keeps it.

;;; Code:

(require 'eglot)
(require 'cl-lib)

(defgroup genls nil
  "The genls language server through eglot."
  :group 'tools
  :prefix "genls-")

(defcustom genls-program '("genls")
  "Command line starting genls (it serves LSP on stdio)."
  :type '(repeat string))

(defcustom genls-major-modes '(text-mode markdown-mode org-mode)
  "Major modes, and modes derived from them, that genls manages."
  :type '(repeat symbol))

(defcustom genls-settings nil
  "Settings for genls, as a plist mirroring the server's JSON object.
Keys: :endpoint (:url :backend :model :token), :parameters
\(:max_new_tokens :top_k :top_p :temperature :repetition_penalty
:stop_sequences :seed), :prompt (:template :system :fim (:prefix :suffix
:middle)), :log (:level :file).  Sent as initializationOptions and
answered to workspace/configuration (section \"genls\").  After changing
it in a running session, call `genls-push-settings'."
  :type 'sexp)

(defconst genls-kind-generate "refactor.rewrite.genls.generate"
  "Code action kind: generate from the range, insert after it.")

(defconst genls-kind-continue "refactor.rewrite.genls.continue"
  "Code action kind: continue the document at the cursor.")

(defconst genls-kind-cancel "refactor.rewrite.genls.cancel"
  "Code action kind: cancel the running generation.")

(defconst genls-kind-rewrite "refactor.rewrite.genls.rewrite"
  "Code action kind: rewrite the selection (Rewrite).")

(defconst genls-kind-action "refactor.rewrite.genls.action"
  "Code action kind of every named action from the settings (:actions).")

(defconst genls-kind-accept "quickfix.genls.accept"
  "Code action kind: keep a pending generation.")

(defconst genls-kind-discard "quickfix.genls.discard"
  "Code action kind: remove a pending generation.")

(defconst genls-kind-regenerate "quickfix.genls.regenerate"
  "Code action kind: remove a pending generation and generate again.")

(defclass genls-lsp-server (eglot-lsp-server) ()
  :documentation "An eglot connection to genls.
It joins each generation's edits into one undo step (see
`genls--undo-head').")

(defun genls--settings (&rest _)
  "The settings object to send: `genls-settings', or {} when unset."
  (or genls-settings (make-hash-table)))

(defun genls-contact (&optional _interactive)
  "The eglot contact for genls: `genls-program' and its initializationOptions.
The connection is a `genls-lsp-server'."
  (cons 'genls-lsp-server
        (append genls-program (list :initializationOptions #'genls--settings))))

(defun genls-workspace-configuration (_server)
  "A value for `eglot-workspace-configuration' holding the genls section."
  (list :genls (genls--settings)))

;;;###autoload
(defun genls-setup ()
  "Register genls with eglot for `genls-major-modes'.
Also lets the server edit buffers without asking each time
\(`eglot-confirm-server-initiated-edits'), which streaming needs, and
answers workspace/configuration for the \"genls\" section."
  (setq eglot-server-programs
        (cons (cons genls-major-modes #'genls-contact)
              (cl-remove #'genls-contact eglot-server-programs :key #'cdr)))
  (setq eglot-confirm-server-initiated-edits nil)
  (let ((config (default-value 'eglot-workspace-configuration)))
    (cond
     ((or (null config) (eq config #'genls-workspace-configuration))
      (setq-default eglot-workspace-configuration #'genls-workspace-configuration))
     ((and (consp config) (keywordp (car config)))
      (setq-default eglot-workspace-configuration
                    (plist-put (copy-sequence config) :genls (genls--settings))))
     (t
      (display-warning 'genls "eglot-workspace-configuration is already set: add a :genls section to it")))))

(defun genls--server ()
  "The eglot server of the current buffer."
  (eglot--current-server-or-lose))

;;;###autoload
(defun genls-generate (beg end &optional instruction)
  "Generate text with genls.
With an active region (BEG to END), generate from its text and insert
the result right after it.  Otherwise continue the buffer at point
\(\"Generate here\"): the text before point is the prompt.  With a
prefix argument, ask for an INSTRUCTION first (empty: none)."
  (interactive (append (if (use-region-p)
                           (list (region-beginning) (region-end))
                         (list (point) (point)))
                       (and current-prefix-arg
                            (list (genls--read-instruction "Generate (instruction, empty for none): ")))))
  (genls--server)
  (when (use-region-p) (deactivate-mark))
  (if (genls--instruction instruction)
      (genls--generate beg end (if (= beg end) "here" "insert") instruction)
    ;; INTERACTIVE = t executes the action (eglot 1.9 otherwise only
    ;; returns it); with a kind and one matching action there is no prompt.
    (eglot-code-actions beg end
                        (if (= beg end) genls-kind-continue genls-kind-generate)
                        t)))

(defvar genls-instruction-history nil
  "Instructions given to `genls-generate' and `genls-rewrite'.")

(defun genls--read-instruction (prompt)
  "Read an instruction in the minibuffer with PROMPT, with history."
  (read-string prompt nil 'genls-instruction-history))

(defun genls--instruction (instruction)
  "INSTRUCTION, or nil when it is nil or blank."
  (and (stringp instruction) (not (string-blank-p instruction)) instruction))

(defun genls--generate (beg end mode &optional instruction)
  "Run genls.generate on BEG to END in MODE (\"insert\", \"here\" or
\"rewrite\"), following INSTRUCTION when it is not blank."
  (let ((server (genls--server))
        (arg (append (eglot--TextDocumentIdentifier)
                     (list :range (list :start (eglot--pos-to-lsp-position beg)
                                        :end (eglot--pos-to-lsp-position end))
                           :mode mode))))
    (when (genls--instruction instruction)
      (setq arg (append arg (list :instruction instruction))))
    ;; The server must see the buffer as it is for the range to hold.
    (eglot--signal-textDocument/didChange)
    (eglot-execute-command server 'genls.generate (vector arg))))

;;;###autoload
(defun genls-rewrite (beg end &optional instruction)
  "Rewrite the region from BEG to END with genls, as INSTRUCTION says.
Interactively, ask for the instruction (empty: none, the model improves
the text).  The new text streams in right after the region; the original
stays, marked, until `genls-accept' removes it or `genls-discard' removes
the new text instead."
  (interactive (if (use-region-p)
                   (list (region-beginning) (region-end)
                         (genls--read-instruction "Rewrite (instruction, empty for none): "))
                 (user-error "genls: select the text to rewrite")))
  (when (= beg end)
    (user-error "genls: select the text to rewrite"))
  (genls--server)
  (when (use-region-p) (deactivate-mark))
  (genls--generate beg end "rewrite" instruction))

;;;###autoload
(defun genls-cancel (&optional all)
  "Cancel generation in the current buffer; with prefix ALL, everywhere."
  (interactive "P")
  (eglot-execute-command (genls--server) 'genls.cancel
                         (if all [] (vector (eglot--TextDocumentIdentifier)))))

(defun genls--review (action all)
  "Run genls.ACTION on the pending generations at point or in the region.
With ALL, on every pending generation in the buffer.  Returns the number
of generations the server acted on."
  (let ((server (genls--server))
        (arg (eglot--TextDocumentIdentifier)))
    (unless all
      (let ((beg (if (use-region-p) (region-beginning) (point)))
            (end (if (use-region-p) (region-end) (point))))
        (setq arg (append arg (list :range (list :start (eglot--pos-to-lsp-position beg)
                                                 :end (eglot--pos-to-lsp-position end)))))))
    ;; The server must see the buffer as it is to find point in it.
    (eglot--signal-textDocument/didChange)
    (let ((count (eglot-execute-command server (intern (concat "genls." action)) (vector arg))))
      (cond
       ((not (numberp count)))
       ((zerop count)
        (message "genls: no pending generation %s" (if all "in this buffer" "here")))
       (t
        (message "genls: %s %d generation%s"
                 (pcase action ("accept" "accepted") ("discard" "discarded") (_ "regenerated"))
                 count (if (= count 1) "" "s"))))
      count)))

;;;###autoload
(defun genls-accept (&optional all)
  "Keep the pending generation at point: its text stays, its mark goes.
With an active region, those touching the region; with prefix ALL,
every pending generation in the buffer."
  (interactive "P")
  (genls--review "accept" all))

;;;###autoload
(defun genls-discard (&optional all)
  "Remove the pending generation at point, as if it had never run.
What you typed inside the generated text goes with it; what you typed
around it stays.  With an active region, the generations touching the
region; with prefix ALL, every pending generation in the buffer.
`undo' brings the text back."
  (interactive "P")
  (genls--review "discard" all))

;;;###autoload
(defun genls-regenerate (&optional all)
  "Remove the pending generation at point and run the same request again.
With an active region, the generations touching the region; with prefix
ALL, every pending generation in the buffer.  One `undo' undoes the
whole Regenerate."
  (interactive "P")
  (genls--review "regenerate" all))

;;; One undo step per generation.

(defvar-local genls--undo-head nil
  "The undo list as genls's last edit in this buffer left it, or nil.
Emacs closes an undo step after every command, so a generation that
streams in while the user moves around would take many `undo's.  genls's
next edit joins the previous one when only undo boundaries were added
to the list since: never when the user changed or undid anything in the
buffer in between.  nil makes the next edit start an undo step of its
own, as a new generation and a Discard do.")

(defun genls--undo-joinable ()
  "The undo list genls's next edit may join, or nil."
  (let ((list buffer-undo-list))
    (when (and genls--undo-head (consp list))
      (while (and (consp list) (null (car list)))
        (setq list (cdr list)))
      (and (eq list genls--undo-head) list))))

(defun genls--undo-join (head)
  "Remove the undo boundaries between HEAD and the top of the undo list.
HEAD is a tail of `buffer-undo-list'; nothing happens if it is not."
  (when (let ((cell buffer-undo-list))
          (while (and (consp cell) (not (eq cell head)))
            (setq cell (cdr cell)))
          (eq cell head))
    (let ((prev nil)
          (cell buffer-undo-list))
      (while (not (eq cell head))
        (cond ((car cell) (setq prev cell))
              (prev (setcdr prev (cdr cell)))
              (t (setq buffer-undo-list (cdr cell))))
        (setq cell (cdr cell))))))

(defun genls--uri-buffer (uri)
  "The live buffer visiting URI's file, or nil."
  (and (stringp uri) (find-buffer-visiting (eglot--uri-to-path uri))))

(defun genls--edit-buffers (edit)
  "The buffers the WorkspaceEdit EDIT changes that are visited."
  (let (buffers)
    (mapc (lambda (change)
            (push (genls--uri-buffer (plist-get (plist-get change :textDocument) :uri)) buffers))
          (plist-get edit :documentChanges))
    (cl-loop for (uri _edits) on (plist-get edit :changes) by #'cddr
             do (push (genls--uri-buffer (substring (symbol-name uri) 1)) buffers))
    (delete-dups (delq nil buffers))))

(cl-defmethod eglot-handle-request :around
  ((_server genls-lsp-server) (_method (eql workspace/applyEdit)) &key edit &allow-other-keys)
  "Apply genls's EDIT, joined to genls's previous edit for `undo'.
Changes go to the server at once, not when Emacs is next idle, which a
user who keeps moving around never is: the user's, which an edit made
for an older version is rejected for (genls sends it again for the new
one), and the edit's own (Regenerate writes only where the editor
reported the old text gone)."
  (let* ((buffers (genls--edit-buffers edit))
         (joins (mapcar (lambda (buffer)
                          (cons buffer (with-current-buffer buffer (genls--undo-joinable))))
                        buffers)))
    (pcase-dolist (`(,buffer . ,head) joins)
      (with-current-buffer buffer
        ;; An edit that joins nothing starts an undo step: it may come
        ;; right after genls's previous one, or be applied in the middle of
        ;; a command (while it waits for the server), whose own changes
        ;; must stay a step of their own.
        (unless head
          (undo-boundary))
        (when eglot--managed-mode
          (eglot--signal-textDocument/didChange))))
    (prog1 (cl-call-next-method)
      (pcase-dolist (`(,buffer . ,head) joins)
        (when (buffer-live-p buffer)
          (with-current-buffer buffer
            (when head
              (genls--undo-join head))
            (setq genls--undo-head buffer-undo-list)
            (when eglot--managed-mode
              (eglot--signal-textDocument/didChange))))))))

(defun genls--new-undo-step (buffers)
  "Make genls's next edit in each of BUFFERS start an undo step of its own."
  (dolist (buffer buffers)
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (setq genls--undo-head nil)))))

(defun genls--command-buffers (server arguments)
  "The buffers a genls command's ARGUMENTS name.
With none, the command applies to every document: all of SERVER's."
  (if (zerop (length arguments))
      (eglot--managed-buffers server)
    (delq nil (mapcar (lambda (arg) (and (listp arg) (genls--uri-buffer (plist-get arg :uri))))
                      arguments))))

(defun genls--read-pending (server)
  "Handle what SERVER sent right after its reply to a request.
jsonrpc stops reading the connection at the reply a request waits for
\(it leaves by a `throw' from the process filter), and the messages that
came with it wait for the server's next output: after a Discard, its
edit; after an Accept, the marks it clears.  Running the filter on no new
output reads them now."
  (let ((process (jsonrpc--process server)))
    (when (process-live-p process)
      (funcall (process-filter process) process ""))))

(cl-defmethod eglot-execute-command :around ((server genls-lsp-server) command arguments)
  "Execute genls's COMMAND with ARGUMENTS; start undo steps where it edits.
A generation starts an undo step of its own, and so does the edit that
discards one: `undo' after a Discard brings the text back.  A
Regenerate's new text joins its removal, one undo step."
  (let ((name (format "%s" command)))
    (when (member name '("genls.generate" "genls.discard" "genls.regenerate"))
      (genls--new-undo-step (genls--command-buffers server arguments)))
    (prog1 (cl-call-next-method)
      (genls--read-pending server))))

(defun genls-push-settings ()
  "Send `genls-settings' to the running server."
  (interactive)
  (eglot-signal-didChangeConfiguration (genls--server)))

(provide 'genls)
;;; genls.el ends here
