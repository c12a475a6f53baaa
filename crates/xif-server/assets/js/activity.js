// activity: filled in by its part of step 12
