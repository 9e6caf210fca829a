/* Loaded between require.js and the widget manager (nb_ipywidgets_js in _config.yml).
   Each widget module loads its icon fonts from the folder require.js gives as the module's
   own address, by default relative to the page (notebooks/@jupyter-widgets/..., a 404).
   The modules are defined inside embed-amd.js, so these paths fetch nothing: they only
   place each module beside its fonts in this folder, which holds for a page at any depth. */
(function () {
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  require.config({
    paths: {
      "@jupyter-widgets": here.replace(/\/$/, ""),
      "@jupyter-widgets/html-manager/dist": here + "@jupyter-widgets/html-manager/dist"
    }
  });
})();
