/* ipywidgets' HTML widgets typeset their content with the MathJax 2 call MathJax.Hub.Queue(["Typeset", hub, el]);
   the book loads MathJax 3, which has no Hub, and the call throws. This gives every MathJax object the page
   assigns a Hub whose Queue typesets the element with MathJax 3. */
(function () {
  "use strict";
  function withHub(mj) {
    if (mj && typeof mj === "object" && !mj.Hub) {
      mj.Hub = {
        Queue: function (cmd) {
          var el = Array.isArray(cmd) ? cmd[2] : undefined;
          var m = window.MathJax;
          var typeset = function () { return m.typesetPromise ? m.typesetPromise(el ? [el] : undefined) : undefined; };
          if (m && m.startup && m.startup.promise) { return m.startup.promise.then(typeset); }
          return typeset();
        }
      };
    }
    return mj;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); }
  });
})();
