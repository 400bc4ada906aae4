/* noloader: built with a dynamic loader that does not exist, so the
 * kernel refuses to run it with ENOENT. */
int main(void) { return 0; }
