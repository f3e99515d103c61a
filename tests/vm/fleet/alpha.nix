# alpha: the defaults (copy, root, evaluation on the host). The users its
# secrets belong to exist before the first deployment.
{
  users.users.app = {
    isSystemUser = true;
    group = "app";
  };
  users.groups.app = { };
  users.users.alice.isNormalUser = true;
  users.users.bob.isNormalUser = true;
}
