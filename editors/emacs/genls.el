;;; genls.el --- Stream LLM output into buffers with the genls language server  -*- lexical-binding: t -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: tools, convenience
;; URL: https://github.com/genls/genls

;;; Commentary:

;; genls is a language server that streams text from an LLM endpoint
;; into the document through `workspace/applyEdit'.  This file registers
;; it with eglot and adds two commands:
;;
;;   M-x genls-generate  with an active region, generate from the region's
;;                       text and insert the result right after it;
;;                       without one, continue the buffer at point
;;   M-x genls-cancel    stop generating in this buffer (C-u: everywhere)
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

(defconst genls-kind-generate "refactor.genls.generate"
  "Code action kind: generate from the range, insert after it.")

(defconst genls-kind-continue "refactor.genls.continue"
  "Code action kind: continue the document at the cursor.")

(defun genls--settings (&rest _)
  "The settings object to send: `genls-settings', or {} when unset."
  (or genls-settings (make-hash-table)))

(defun genls-contact (&optional _interactive)
  "The eglot contact for genls: `genls-program' and its initializationOptions."
  (append genls-program (list :initializationOptions #'genls--settings)))

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
(defun genls-generate (beg end)
  "Generate text with genls.
With an active region (BEG to END), generate from its text and insert
the result right after it.  Otherwise continue the buffer at point
\(\"Generate here\"): the text before point is the prompt."
  (interactive (if (use-region-p)
                   (list (region-beginning) (region-end))
                 (list (point) (point))))
  (genls--server)
  (when (use-region-p) (deactivate-mark))
  ;; INTERACTIVE = t executes the action (eglot 1.9 otherwise only
  ;; returns it); with a kind and one matching action there is no prompt.
  (eglot-code-actions beg end
                      (if (= beg end) genls-kind-continue genls-kind-generate)
                      t))

;;;###autoload
(defun genls-cancel (&optional all)
  "Cancel generation in the current buffer; with prefix ALL, everywhere."
  (interactive "P")
  (eglot-execute-command (genls--server) 'genls.cancel
                         (if all [] (vector (eglot--TextDocumentIdentifier)))))

(defun genls-push-settings ()
  "Send `genls-settings' to the running server."
  (interactive)
  (eglot-signal-didChangeConfiguration (genls--server)))

(provide 'genls)
;;; genls.el ends here
