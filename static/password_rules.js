// Ticks each password rule as the user meets it on the set-password page. A static file,
// because the CSP allows no inline script. Only a guide: the server checks every rule again
// (idp/services/password_policy.py), including those the browser cannot know.
//
// Markup (templates/journey/_password_rules.html renders the list; the page loads this file):
//
//   <input type="password" id="password" data-password-rules="password-rules"
//          data-confirmation="password-confirm" aria-describedby="password-rules">
//   <input type="password" id="password-confirm">
//   <ul id="password-rules" class="password-rules" data-normalize="NFKC">
//     <li data-rule="min_length" data-pattern="^[\s\S]{8,}">At least 8 characters.</li>
//     <li data-rule="confirmation" data-pattern="=confirmation">The two passwords…</li>
//     <li data-rule="not_breached">Password is not compromised.</li>
//   </ul>
//
// - data-password-rules on the password field: the id of its rule list; empty means
//   "password-rules", the partial's default.
// - the field that repeats the password: named by data-confirmation="<id>" on the password
//   field, or marked with data-password-confirm itself (looked up in the same form).
// - data-normalize (optional, on the list): the Unicode form the patterns see, as the server.
// - data-pattern on a rule: a regular expression tested with the "u" flag (met when it
//   matches), or "=confirmation": met when both fields hold the same password.
//
// On every input a rule's <li> gets class "met" or "unmet". Rules without data-pattern
// (blocklist, breaches: server only), and every rule while the password is empty, stay
// neutral: no class.
(function () {
  "use strict";

  var SAME_AS_CONFIRMATION = "=confirmation";

  // One rule's state: true (met), false (unmet) or null (neutral).
  function ruleState(pattern, password, confirmation, normalize) {
    if (!password) return null;
    if (pattern === SAME_AS_CONFIRMATION) {
      if (!confirmation) return null;
      return password.normalize("NFKC") === confirmation.normalize("NFKC");
    }
    var value = normalize ? password.normalize(normalize) : password;
    try {
      return new RegExp(pattern, "u").test(value);
    } catch (error) {
      return null; // a pattern this browser cannot read: leave the rule to the server
    }
  }

  function bind(input, doc) {
    var list = doc.getElementById(input.getAttribute("data-password-rules") || "password-rules");
    if (!list) return;
    var confirmId = input.getAttribute("data-confirmation");
    var confirmation = confirmId
      ? doc.getElementById(confirmId)
      : (input.form || doc).querySelector("[data-password-confirm]");
    var normalize = list.getAttribute("data-normalize");
    var items = list.querySelectorAll("li[data-rule][data-pattern]");

    function update() {
      var repeated = confirmation ? confirmation.value : "";
      items.forEach(function (item) {
        var state = ruleState(item.getAttribute("data-pattern"), input.value, repeated, normalize);
        item.classList.toggle("met", state === true);
        item.classList.toggle("unmet", state === false);
      });
    }

    input.addEventListener("input", update);
    if (confirmation) confirmation.addEventListener("input", update);
    update(); // a page re-shown after an error may come back with values filled in
  }

  function start() {
    document.querySelectorAll("input[data-password-rules]").forEach(function (input) {
      bind(input, document);
    });
  }

  if (typeof module === "object" && module.exports) {
    module.exports = { ruleState: ruleState, bind: bind }; // the unit tests run this in node
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
