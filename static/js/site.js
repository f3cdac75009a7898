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
        var node = doc.querySelector("[data-error-message]") || doc.querySelector("main p") || doc.querySelector("h1");
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

  function boxFor(elt) {
    var form = elt && elt.closest ? elt.closest("form") : null;
    if (!form) return document.getElementById("htmx-error");
    var box = form.querySelector(".htmx-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "error-message htmx-error";
      box.setAttribute("role", "alert");
      form.insertBefore(box, form.firstChild);
    }
    return box;
  }

  function show(evt) {
    var box = boxFor(evt.detail.elt);
    if (!box) return;
    box.textContent = messageFrom(evt.detail.xhr);
    box.hidden = false;
  }

  document.addEventListener("htmx:responseError", show);
  document.addEventListener("htmx:sendError", show);
  document.addEventListener("htmx:timeout", show);
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!evt.detail.successful) return;
    // A success clears the error this element's earlier request left.
    var elt = evt.detail.elt;
    var form = elt && elt.closest ? elt.closest("form") : null;
    var box = form ? form.querySelector(".htmx-error") : document.getElementById("htmx-error");
    if (!box) return;
    if (form) {
      box.remove();
    } else {
      box.hidden = true;
      box.textContent = "";
    }
  });

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
