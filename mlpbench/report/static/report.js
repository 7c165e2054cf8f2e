// report.html's one script, inlined into the page and allowed by its hash in the Content-Security-Policy.
// It reports how many images decoded, for readers and for the headless-browser test (data-images-loaded).
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
});
