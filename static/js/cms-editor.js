/*
 * A small rich-text editor for the CMS admin (cms.forms.RichTextWidget): a toolbar over a
 * contenteditable area that writes its HTML back into the original textarea. It only offers
 * what cms/sanitize.py keeps (headings, paragraphs, bold, italic, lists, quotes, links,
 * images); the server sanitises whatever arrives anyway, so this is a convenience, not a guard.
 * No inline handlers (the admin runs under the same Content-Security-Policy as the site).
 */
(function () {
  "use strict";

  var BUTTONS = [
    { label: "Paragraph", text: "¶", block: "P" },
    { label: "Heading", text: "H2", block: "H2" },
    { label: "Subheading", text: "H3", block: "H3" },
    { label: "Bold", text: "B", command: "bold" },
    { label: "Italic", text: "I", command: "italic" },
    { label: "Bulleted list", text: "• List", command: "insertUnorderedList" },
    { label: "Numbered list", text: "1. List", command: "insertOrderedList" },
    { label: "Quote", text: "“ Quote", block: "BLOCKQUOTE" },
    { label: "Link", text: "Link", action: "link" },
    { label: "Remove link", text: "Unlink", command: "unlink" },
    { label: "Image", text: "Image", action: "image" },
    { label: "Undo", text: "↶", command: "undo" },
    { label: "Redo", text: "↷", command: "redo" },
    { label: "Edit HTML", text: "HTML", action: "source", toggle: true }
  ];

  function labelFor(textarea) {
    var label = document.querySelector('label[for="' + textarea.id + '"]');
    return label ? label.textContent.replace(/:\s*$/, "").trim() : "Text";
  }

  function enhance(textarea) {
    var wrapper = document.createElement("div");
    wrapper.className = "mm-editor";
    var toolbar = document.createElement("div");
    toolbar.className = "mm-editor-toolbar";
    toolbar.setAttribute("role", "toolbar");
    toolbar.setAttribute("aria-label", labelFor(textarea) + " formatting");
    var area = document.createElement("div");
    area.className = "mm-editor-area";
    area.contentEditable = "true";
    area.setAttribute("role", "textbox");
    area.setAttribute("aria-multiline", "true");
    area.setAttribute("aria-label", labelFor(textarea));
    // Start inside a paragraph, so the first line typed is not bare text.
    area.innerHTML = textarea.value.trim() || "<p><br></p>";

    function sync() { textarea.value = area.innerHTML; }
    function focusArea() { if (document.activeElement !== area) area.focus(); }

    BUTTONS.forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "mm-editor-button";
      button.textContent = spec.text;
      button.title = spec.label;
      button.setAttribute("aria-label", spec.label);
      if (spec.toggle) button.setAttribute("aria-pressed", "false");
      // Keep the selection in the editing area when a button is pressed with the mouse.
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () {
        if (spec.action === "source") {
          var showing = textarea.classList.toggle("mm-editor-source-visible");
          if (showing) { sync(); } else { area.innerHTML = textarea.value; }
          area.hidden = showing;
          button.setAttribute("aria-pressed", String(showing));
          return;
        }
        focusArea();
        if (spec.block) {
          document.execCommand("formatBlock", false, spec.block);
        } else if (spec.command) {
          document.execCommand(spec.command, false, null);
        } else if (spec.action === "link") {
          var href = window.prompt("Link address (https://…, or a page of this site such as /doctors/):", "https://");
          if (href && !/^\s*(javascript|data|vbscript):/i.test(href)) document.execCommand("createLink", false, href.trim());
        } else if (spec.action === "image") {
          var src = window.prompt("Image address (copy it from the media library):", "/media/cms/");
          if (!src) return;
          var alt = window.prompt("Describe the image for people who cannot see it (alt text):", "");
          if (alt === null) return;
          var img = document.createElement("img");
          img.src = src.trim();
          img.alt = alt.trim();
          document.execCommand("insertHTML", false, img.outerHTML);
        }
        sync();
      });
      toolbar.appendChild(button);
    });

    area.addEventListener("input", sync);
    area.addEventListener("blur", sync);
    // Paste as plain text: formatting copied from other sites brings markup we would drop anyway.
    area.addEventListener("paste", function (event) {
      event.preventDefault();
      var text = (event.clipboardData || window.clipboardData).getData("text/plain");
      document.execCommand("insertText", false, text);
    });
    if (textarea.form) textarea.form.addEventListener("submit", function () {
      if (!textarea.classList.contains("mm-editor-source-visible")) sync();
    });

    textarea.classList.add("mm-editor-source");
    textarea.parentNode.insertBefore(wrapper, textarea);
    wrapper.appendChild(toolbar);
    wrapper.appendChild(area);
    wrapper.appendChild(textarea);
    document.execCommand("defaultParagraphSeparator", false, "p");
  }

  function init() {
    document.querySelectorAll("textarea[data-mm-rich-text]").forEach(enhance);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
