/* Atelier's only script besides htmx. Loaded from static files, as the CSP allows no inline code.
 *
 * 1. A failed htmx request (4xx/5xx, or no answer) is shown to the user: in the form that sent
 *    it, or at the top of the page. htmx swaps nothing on an error, so what the user typed stays.
 * 2. Tables marked `.stack` label each cell with its column's heading, so on a phone each row
 *    can be shown as a small card (see site.css).
 */
(function () {
  "use strict";

  var FALLBACK = "The request failed. What you typed is kept; please try again.";

  function messageFrom(xhr) {
    if (!xhr || !xhr.status) return "The server could not be reached. What you typed is kept; please try again.";
    var type = xhr.getResponseHeader("Content-Type") || "";
    var text = "";
    try {
      if (type.indexOf("json") !== -1) {
        var data = JSON.parse(xhr.responseText);
        text = data.detail || data.message || "";
      } else if (type.indexOf("html") !== -1) {
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var node = doc.querySelector("[data-error-message]") || doc.querySelector("main h1 ~ p") || doc.querySelector("h1");
        text = node ? node.textContent : "";
      } else {
        text = xhr.responseText;
      }
    } catch (e) {
      text = "";
    }
    text = (text || "").replace(/\s+/g, " ").trim();
    if (text.length > 400) text = text.slice(0, 400) + "…";
    return (text || FALLBACK) + " (" + xhr.status + ")";
  }

  function formOf(elt) {
    return elt && elt.closest ? elt.closest("form") : null;
  }

  function show(elt, text) {
    var form = formOf(elt);
    var box;
    if (form) {
      box = form.querySelector(".htmx-error");
      if (!box) {
        box = document.createElement("p");
        box.className = "error-message htmx-error";
        box.setAttribute("role", "alert");
        form.insertBefore(box, form.firstChild);
      }
    } else {
      box = document.getElementById("htmx-error");
      if (!box) return;
      box.setAttribute("data-source", (elt && elt.id) || "");
    }
    box.textContent = text;
    box.hidden = false;
  }

  // A form's old error goes when it is sent again.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = formOf(evt.detail.elt);
    var box = form && form.querySelector(".htmx-error");
    if (box) box.remove();
  });

  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    var elt = evt.detail.elt;
    if (xhr.status >= 400) {
      show(elt, messageFrom(xhr));
      // Shown to the user here; nothing is swapped, and htmx need not log it as unhandled.
      evt.detail.shouldSwap = false;
      evt.detail.isError = false;
      return;
    }
    // The element whose failure the page's box reports has succeeded since (a poller).
    var pageBox = document.getElementById("htmx-error");
    if (pageBox && !pageBox.hidden && elt && elt.id && pageBox.getAttribute("data-source") === elt.id) {
      pageBox.hidden = true;
      pageBox.textContent = "";
    }
  });

  // No answer at all: the server is unreachable or took too long.
  document.addEventListener("htmx:sendError", function (evt) { show(evt.detail.elt, messageFrom(null)); });
  document.addEventListener("htmx:timeout", function (evt) { show(evt.detail.elt, messageFrom(null)); });

  function labelTables(root) {
    var tables = (root || document).querySelectorAll("table.stack");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (heads[i] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[i]);
        });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { labelTables(); });
  } else {
    labelTables();
  }
})();
